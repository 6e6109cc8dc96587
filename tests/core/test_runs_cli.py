"""`sluice runs`, `runs show`, `runs forget` and `sluice logs` on a real local sweep's ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sluice.flows.sweep import SweepIncomplete, tiered_index_sweep
from typer.testing import CliRunner

from sluice.cli import app
from sluice.jobs import JobResult, Outcome
from sluice.ledger import hold_run, open_ledger
from sluice.ledger.queries import run_summaries
from tests.cli_json import documented, printed
from tests.core.sweep_workload import write_template
from tests.core.test_ledger import ledger, ledger_url, planned, postgres_server  # noqa: F401

RUN = "sweep/test/t"


@pytest.fixture(scope="module")
def swept(prefect_api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One sweep of indexes 0-2: 0 succeeds, 1 runs out of memory at tier 0 and succeeds at
    tier 1, 2 fails (exit 3)."""
    tmp = tmp_path_factory.mktemp("runs")
    url = f"sqlite:///{tmp / 'ledger.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLUICE_HOME", str(tmp / "home"))
        template = _saying_hello(
            write_template(tmp / "job.yaml", NEEDS="1:96", FAIL="2", DONE_LOG=str(tmp / "done.log"))
        )
        with pytest.raises(SweepIncomplete):
            tiered_index_sweep(
                template_path=str(template),
                namespace="test",
                job_name_prefix="t",
                indexes=[0, 1, 2],
                tier=0,
                schedule_start_gi=0.0625,
                max_tier=2,
                parallelism=2,
                quiet=True,
                ledger_url=url,
                report_dir=str(tmp / "reports"),
            )
        yield {"url": url, "home": tmp / "home"}


def _saying_hello(template: Path) -> Path:
    """The sweep workload, printing a line first (so each job's log has something to show)."""
    job = yaml.safe_load(template.read_text())
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    command[-1] = "import os\nprint('index', os.environ['INDEX'], 'started')\n" + command[-1]
    template.write_text(yaml.safe_dump(job))
    return template


def _sluice(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def _one_error(result, *named: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(n in lines[0] for n in named), lines


def test_runs_lists_items_by_outcome_and_when(swept):
    listed = _sluice("runs", "--ledger-url", swept["url"], "--json")
    assert listed.exit_code == 0, listed.output
    (run,) = json.loads(listed.stdout)
    assert set(run) == documented("runs")
    assert run["run"] == RUN
    assert (run["items"], run["attempts"]) == (3, 4)
    assert run["outcomes"] == {"failed": 1, "succeeded": 2}
    assert run["first_attempt"] <= run["last_attempt"]
    assert run["holder"] is None
    table = _sluice("runs", "--ledger-url", swept["url"]).stdout.splitlines()
    assert table[0].split()[:4] == ["RUN", "ITEMS", "ATTEMPTS", "OUTCOMES"]
    assert table[1].split()[:6] == [RUN, "3", "4", "failed", "1", "succeeded"]


def test_runs_show_gives_each_attempt_tier_outcome_peak_and_log(swept):
    shown = _sluice("runs", "show", RUN, "--item", "1", "--ledger-url", swept["url"], "--json")
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert printed(document, "rows") == documented("runs show")
    rows = document["rows"]
    assert [(r["attempt"], r["tier"], r["outcome"]) for r in rows] == [
        (1, 0, "oom"),
        (2, 1, "succeeded"),
    ]
    assert rows[1]["memory_bytes"] == 128 * 2**20
    assert rows[1]["peak_memory_bytes"] > 0
    assert all(Path(r["log_path"]).is_relative_to(swept["home"]) for r in rows)
    every = json.loads(_sluice("runs", "show", RUN, "--ledger-url", swept["url"], "--json").stdout)
    assert sorted(r["item"] for r in every["rows"]) == ["0", "1", "1", "2"]
    text = _sluice("runs", "show", RUN, "--ledger-url", swept["url"]).stdout
    assert text.startswith(f"{RUN}: 3 items (failed 1 succeeded 2), 4 attempts")
    assert "failed (exit:3)" in text


def test_logs_prints_the_job_log_of_an_attempt(swept):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLUICE_HOME", str(swept["home"]))
        newest = _sluice("logs", RUN, "1", "--ledger-url", swept["url"])
        first = _sluice("logs", RUN, "1", "--attempt", "1", "--ledger-url", swept["url"])
    assert newest.exit_code == 0, newest.output
    assert first.exit_code == 0, first.output
    rows = json.loads(
        _sluice("runs", "show", RUN, "--item", "1", "--ledger-url", swept["url"], "--json").stdout
    )["rows"]
    assert newest.stdout == Path(rows[1]["log_path"]).read_text()
    assert newest.stdout.startswith("index 1 started\n")
    assert first.stdout == Path(rows[0]["log_path"]).read_text()
    assert rows[0]["log_path"] != rows[1]["log_path"]


def test_an_empty_job_log_is_said_not_left_blank(swept):
    rows = json.loads(
        _sluice("runs", "show", RUN, "--item", "2", "--ledger-url", swept["url"], "--json").stdout
    )["rows"]
    Path(rows[-1]["log_path"]).write_text("")  # as a job killed before it printed leaves it
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLUICE_HOME", str(swept["home"]))
        empty = _sluice("logs", RUN, "2", "--ledger-url", swept["url"])
    assert empty.exit_code == 0 and empty.stdout == "", empty.output
    assert (
        empty.stderr == f"job {rows[-1]['job_name']!r}: its log {rows[-1]['log_path']} is empty\n"
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["runs", "show", "sweep/none"], "sweep/none"),
        (["runs", "show", RUN, "--item", "9"], "'9'"),
        (["logs", RUN, "9"], "'9'"),
        (["logs", RUN, "1", "--attempt", "3"], "--attempt"),
        (["logs", "sweep/none", "1"], "sweep/none"),
        (["runs", "forget", "sweep/none", "--yes"], "sweep/none"),
    ],
)
def test_unknown_run_item_or_attempt_is_one_line(swept, args, named):
    _one_error(_sluice(*args, "--ledger-url", swept["url"]), named)


def test_a_bad_ledger_url_is_one_line_and_creates_nothing(tmp_path):
    for command in (["runs"], ["runs", "show", RUN], ["logs", RUN, "0"]):
        _one_error(_sluice(*command, "--ledger-url", "mysql://x"), "--ledger-url")
    missing = tmp_path / "none" / "ledger.db"
    _one_error(_sluice("runs", "--ledger-url", f"sqlite:///{missing}"), "does not exist")
    absent = tmp_path / "ledger.db"
    listed = _sluice("runs", "--ledger-url", f"sqlite:///{absent}")
    assert (listed.exit_code, listed.stdout) == (0, "no runs recorded\n")
    assert not absent.exists()


def test_forget_refuses_a_running_run_asks_and_then_forgets(swept):
    url = swept["url"]
    store = open_ledger(url)
    try:
        with hold_run(store, RUN):  # a live holder: this process
            _one_error(_sluice("runs", "forget", RUN, "--yes", "--ledger-url", url), "running")
            shown = json.loads(_sluice("runs", "--ledger-url", url, "--json").stdout)
            assert shown[0]["holder"] is not None
    finally:
        store.close()
    declined = _sluice("runs", "forget", RUN, "--ledger-url", url, input="n\n")
    assert declined.exit_code == 1
    assert json.loads(_sluice("runs", "--ledger-url", url, "--json").stdout)[0]["run"] == RUN
    done = _sluice("runs", "forget", RUN, "--ledger-url", url, input="y\n")
    assert done.exit_code == 0, done.output
    assert "4 attempts of 3 items" in done.stdout
    assert json.loads(_sluice("runs", "--ledger-url", url, "--json").stdout) == []


def test_run_summaries_on_both_stores(ledger):  # noqa: F811 - the fixture of test_ledger
    ids = ledger.begin("a", "w", planned("x", "y", "z"))
    ledger.finish(ids[0], JobResult(name="job-x-t0", outcome=Outcome.OOM))
    ledger.finish(ids[1], JobResult(name="job-y-t0", outcome=Outcome.SUCCEEDED))
    (retry,) = ledger.begin("a", "w", planned("x", tier=1))
    ledger.finish(retry, JobResult(name="job-x-t1", outcome=Outcome.SUCCEEDED))
    ledger.begin("b", "w", planned("q"))
    a, b = run_summaries(ledger)
    assert (a.run, a.items, a.attempts, a.outcomes) == ("a", 3, 4, {"running": 1, "succeeded": 2})
    assert a.first_attempt <= a.last_attempt
    assert (b.run, b.outcomes) == ("b", {"running": 1})
    assert run_summaries(ledger, "b") == [b]
    assert run_summaries(ledger, "c") == []
