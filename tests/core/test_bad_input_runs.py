"""`sluice runs`, `runs show`, `runs forget`, `logs` and the `--json` commands: bad input is
one line, exit 2, and nothing (no ledger, no server) is created."""

from __future__ import annotations

import pytest

from tests.bad_input import BadInput, assert_refused

CASES = [
    BadInput(["runs", "--ledger-url", "mysql://x"], "--ledger-url 'mysql://x'"),
    BadInput(["runs", "--ledger-url", "sqlite:///{tmp}/no/l.db"], "does not exist"),
    BadInput(["runs", "--ledger-url", "sqlite:///{tmp}"], "a directory"),
    BadInput(["runs", "--ledger-url", "block:"], "--ledger-url"),
    BadInput(["runs", "show", "sweep/none"], "run 'sweep/none': not in the ledger"),
    BadInput(["runs", "show", "sweep/none", "--item", "1"], "run 'sweep/none'"),
    BadInput(["runs", "forget", "sweep/none", "--yes"], "run 'sweep/none'"),
    BadInput(["logs", "sweep/none", "1"], "run 'sweep/none'"),
    BadInput(["logs", "sweep/none", "1", "--backend", "ssh"], "--backend"),
    BadInput(["logs", "sweep/none", "1", "--attempt", "x"], "--attempt"),
    BadInput(["logs", "sweep/none"], "'item'"),
    BadInput(["runs", "show"], "'run'"),
    BadInput(["runs", "--json", "--ledger-url", "postgres"], "--ledger-url"),
    BadInput(["karabo", "estimate", "--json", "--product", "movie"], "movie"),
    BadInput(["chunkedgraph", "status", "nothere", "--json"], "nothere"),
    BadInput(["stac-report", "--report_dir", "{tmp}/r", "--json"], "--batch_name"),
    BadInput(
        ["stac-report", "--report_dir", "{tmp}/r", "--batch_name", "b1", "--ledger-url", "x"],
        "--ledger-url 'x'",
    ),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_refused_in_one_line_and_nothing_created(tmp_path, case):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    assert_refused(BadInput(argv, case.names), tmp_path / "home", watched=[tmp_path])


def test_a_bad_ledger_variable_is_named(tmp_path):
    case = BadInput(["runs"], "SLUICE_LEDGER_URL")
    env = {"SLUICE_LEDGER_URL": "mysql://x"}
    assert_refused(case, tmp_path / "home", watched=[tmp_path], env=env)
