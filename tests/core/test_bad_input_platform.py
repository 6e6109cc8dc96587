"""Platform bad input: SLUICE_* variables, server commands and names of every kind.

Each case: exit 2, one ``error:`` line naming the input, no traceback, nothing written.
"""

from __future__ import annotations

import pytest

from tests.bad_input import BadInput, assert_refused

BIDI = "a\u202eb"  # RIGHT-TO-LEFT OVERRIDE
ENV_CASES = [
    ("SLUICE_SERVER_PORT", "abc"),
    ("SLUICE_SERVER_PORT", "-1"),
    ("SLUICE_SERVER_PORT", "0"),
    ("SLUICE_SERVER_PORT", "65536"),
    ("SLUICE_LEDGER_URL", "mysql://x"),
    ("SLUICE_LEDGER_URL", "ledger.db"),
    ("SLUICE_LOCAL_CGROUPS", "maybe"),
    ("SLUICE_HOME", ""),
    ("SLUICE_WATERSHEDS_ROOT", " "),
]
COMMANDS = [
    ["server", "status"],
    ["server", "start"],
    ["server", "stop"],
    ["server", "env"],
    ["stac-report", "--batch_name", "b1", "--report_dir", "r"],
    ["chunkedgraph", "status", "t1"],
]


@pytest.mark.parametrize(
    ("variable", "value", "argv"),
    [
        pytest.param(variable, value, argv, id=f"{variable}={value!r} {argv[0]} {argv[1]}")
        for variable, value in ENV_CASES
        for argv in (COMMANDS[0], COMMANDS[1], COMMANDS[4])
    ]
    + [pytest.param("SLUICE_SERVER_PORT", "abc", argv, id=" ".join(argv)) for argv in COMMANDS],
)
def test_bad_sluice_variables(tmp_path, monkeypatch, variable, value, argv):
    monkeypatch.chdir(tmp_path)  # a relative --report_dir that was not refused would land here
    case = BadInput(argv, variable)
    line = assert_refused(case, tmp_path / "home", env={variable: value}, watched=[tmp_path])
    assert line.startswith(f"error: {variable}=")


STAC_BATCH = [
    "stac-batch",
    "--output_root",
    "out",
    "--hand_index_path",
    "hand",
    "--stac_api_url",
    "http://127.0.0.1:9",
]
NAMES = [
    BadInput([*STAC_BATCH, "--batch_name", "../../../x"], "--batch_name", "stac batch escape"),
    BadInput([*STAC_BATCH, "--batch_name", "a/b"], "--batch_name", "stac batch slash"),
    BadInput([*STAC_BATCH, "--batch_name", "b\n1"], "--batch_name", "stac batch newline"),
    BadInput([*STAC_BATCH, "--batch_name", BIDI], "--batch_name", "stac batch bidi"),
    BadInput([*STAC_BATCH, "--batch_name", "b" * 300], "--batch_name", "stac batch long"),
    BadInput([*STAC_BATCH, "--batch_name", ""], "--batch_name", "stac batch empty"),
    BadInput([*STAC_BATCH, "--batch_name", ".hidden"], "--batch_name", "stac batch dot"),
    BadInput(
        [*STAC_BATCH, "--batch_name", "ok", "--report_dir", "r\x1b[2J"],
        "--report_dir",
        "stac report dir escape sequence",
    ),
    BadInput(
        ["stac-report", "--batch_name", "../../x", "--report_dir", "r"],
        "--batch_name",
        "stac-report escape",
    ),
    BadInput(
        ["stac-report", "--batch_name", "b1", "--report_dir", "r\nx"],
        "--report_dir",
        "stac-report dir newline",
    ),
    BadInput(["chunkedgraph", "status", "t" * 300], "table", "cg table 300 characters"),
    BadInput(["chunkedgraph", "status", "../t"], "table", "cg table escape"),
    BadInput(["chunkedgraph", "status", "t\u200d1"], "table", "cg table zero-width joiner"),
    BadInput(["chunkedgraph", "status", ".."], "table", "cg table dotdot"),
    BadInput(["karabo", "run", "--obs-id", "../x"], "--obs-id", "karabo obs id escape"),
    BadInput(["karabo", "run", "--obs-id", "o\n1"], "--obs-id", "karabo obs id newline"),
    BadInput(["karabo", "run", "--obs-id", "o" * 200], "--obs-id", "karabo obs id long"),
    BadInput(
        ["karabo", "run", "--scratch-dir", f"s{BIDI}"], "--scratch-dir", "karabo scratch bidi"
    ),
    BadInput(["karabo", "run", "--report-dir", "r\x00"], "--report-dir", "karabo report NUL"),
    BadInput(["sweep", "--namespace", ""], "--namespace", "sweep empty namespace"),
    BadInput(["sweep", "--namespace", "Bio"], "--namespace", "sweep namespace uppercase"),
    BadInput(["sweep", "--namespace", "n" * 64], "--namespace", "sweep namespace 64"),
    BadInput(["sweep", "--namespace", "ns\n"], "--namespace", "sweep namespace newline"),
    BadInput(["sweep", "--job-name-prefix", f"w{BIDI}"], "--job-name-prefix", "sweep prefix bidi"),
    BadInput(["sweep", "--job-name-prefix", "w/x"], "--job-name-prefix", "sweep prefix slash"),
    BadInput(["sweep", "--report-dir", "r\nx"], "--report-dir", "sweep report newline"),
]


@pytest.mark.parametrize("case", [c.param() for c in NAMES])
def test_bad_names(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)  # relative report dirs would land here
    assert_refused(case, tmp_path / "home", watched=[tmp_path])


# What Click refuses before any Sluice code runs: a wrong type, a bad choice, an unknown
# option, a missing option or argument. One line, exit 2, as everything else.
CLICK = [
    BadInput(["sweep", "--count", "abc"], "--count", "sweep count text"),
    BadInput(["sweep", "--start", "1.5"], "--start", "sweep start float"),
    BadInput(["sweep", "--mode", "bogus"], "--mode", "sweep mode choice"),
    BadInput(["sweep", "--dry-run", "maybe"], "--dry-run", "sweep dry-run choice"),
    BadInput(["sweep", "--no-such-flag"], "--no-such-flag", "sweep unknown option"),
    BadInput(["sweep", "--chunk-size"], "--chunk-size", "sweep option without value"),
    BadInput(["stac-batch"], "--batch_name", "stac missing option"),
    BadInput(["stac-purge", "--batch-size", "many"], "--batch-size", "purge size text"),
    BadInput(["chunkedgraph", "ingest", "--workers", "abc", "t", "d"], "--workers", "cg workers"),
    BadInput(["chunkedgraph", "ingest"], "table", "cg missing argument"),
    BadInput(["watersheds", "run", "--pool-size", "x"], "--pool-size", "ws pool text"),
    BadInput(["karabo", "estimate", "--imaging-npixel", "big"], "--imaging-npixel", "karabo"),
    BadInput(["server", "start", "--port", "p"], "--port", "server port text"),
    BadInput(["no-such-command"], "no-such-command", "unknown command"),
]


@pytest.mark.parametrize("case", [c.param() for c in CLICK])
def test_click_refusals_are_one_line(tmp_path, case):
    line = assert_refused(case, tmp_path / "home")
    assert line.startswith("error: ")
