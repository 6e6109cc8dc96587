"""The tiered sweep end to end on the embedded default: real processes, real memory limits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from sluice.flows.sweep import SweepIncomplete, tiered_index_sweep

from sluice.jobs import Outcome
from sluice.ledger import open_ledger
from tests.bad_input import BadInput, assert_refused
from tests.conftest import ARTIFACTS
from tests.core.sweep_workload import write_template
from tests.report_pages import open_report

TIER0_GI = 0.0625  # 64 MiB, 128 MiB, 256 MiB, ...


@pytest.fixture
def sweep_env(tmp_path, sluice_home, prefect_api):
    done_log = tmp_path / "done.log"
    done_log.touch()
    return {
        "tmp": tmp_path,
        "done_log": done_log,
        "ledger_url": f"sqlite:///{tmp_path / 'ledger.db'}",
        "report_dir": tmp_path / "reports",
    }


def _run(env, template: Path, **overrides):
    parameters = dict(
        template_path=str(template),
        namespace="test",
        job_name_prefix="t",
        tier=0,
        schedule_start_gi=TIER0_GI,
        max_tier=3,
        parallelism=2,
        quiet=True,
        ledger_url=env["ledger_url"],
        report_dir=str(env["report_dir"]),
    )
    parameters.update(overrides)
    return tiered_index_sweep(**parameters)


def _items(env) -> dict[int, dict]:
    lines = (env["report_dir"] / "items.jsonl").read_text().splitlines()
    return {row["index"]: row for row in map(json.loads, lines)}


def test_oom_climbs_to_the_next_tier_and_other_failures_do_not(sweep_env):
    template = write_template(
        sweep_env["tmp"] / "job.yaml",
        NEEDS="1:96,2:200",
        FAIL="3",
        DONE_LOG=str(sweep_env["done_log"]),
    )
    with pytest.raises(SweepIncomplete, match="1 of 4 indexes"):
        _run(sweep_env, template, indexes=[0, 1, 2, 3], chunk_size=2)
    items = _items(sweep_env)
    assert (items[0]["tier"], items[0]["attempts"], items[0]["outcome"]) == (0, 1, "succeeded")
    assert (items[1]["tier"], items[1]["attempts"], items[1]["memory"]) == (1, 2, "128Mi")
    assert (items[2]["tier"], items[2]["attempts"], items[2]["outcome"]) == (2, 3, "succeeded")
    assert items[3] == items[3] | {
        "outcome": "failed",
        "reason": "exit:3",
        "tier": 0,
        "attempts": 1,
    }
    reports = sweep_env["report_dir"]
    assert (reports / "tier0-failures.txt").read_text().split() == ["1", "2", "3"]
    assert (reports / "tier1-failures.txt").read_text().split() == ["2"]
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["succeeded"] == 3 and summary["failed"] == 1 and summary["attempts"] == 7
    assert summary["gib_hours_failed"] > 0 and summary["gib_hours_succeeded"] > 0
    ledger = open_ledger(sweep_env["ledger_url"])
    oom = [a for a in ledger.attempts("sweep/test/t", ["1"]) if a.outcome is Outcome.OOM]
    assert oom and oom[0].exit_code == 137 and oom[0].tier == 0


def test_max_tier_exhausted_is_recorded_as_failed_oom(sweep_env):
    template = write_template(
        sweep_env["tmp"] / "job.yaml", NEEDS="0:200", DONE_LOG=str(sweep_env["done_log"])
    )
    with pytest.raises(SweepIncomplete):
        _run(sweep_env, template, indexes=[0], max_tier=1)
    assert _items(sweep_env)[0] | {} == _items(sweep_env)[0] | {
        "outcome": "failed",
        "reason": "oom",
        "tier": 1,
        "attempts": 2,
    }
    assert sweep_env["done_log"].read_text() == ""


def test_backoff_limit_retries_failures_at_the_same_size(sweep_env):
    template = write_template(
        sweep_env["tmp"] / "job.yaml", FAIL="0", DONE_LOG=str(sweep_env["done_log"])
    )
    with pytest.raises(SweepIncomplete):
        _run(sweep_env, template, indexes=[0], backoff_limit=2)
    assert (_items(sweep_env)[0]["tier"], _items(sweep_env)[0]["reason"]) == (0, "exit:3")


def test_rerun_skips_succeeded_and_replace_reruns(sweep_env):
    template = write_template(sweep_env["tmp"] / "job.yaml", DONE_LOG=str(sweep_env["done_log"]))
    _run(sweep_env, template, indexes=[0, 1])
    _run(sweep_env, template, indexes=[0, 1])
    assert sorted(sweep_env["done_log"].read_text().split()) == ["0", "1"]
    _run(sweep_env, template, indexes=[0, 1], replace=True)
    assert sorted(sweep_env["done_log"].read_text().split()) == ["0", "0", "1", "1"]
    assert _items(sweep_env)[0]["job_name"] == "t-0-a1"


def test_tier_auto_starts_each_index_at_its_lowest_succeeded_tier(sweep_env):
    template = write_template(
        sweep_env["tmp"] / "job.yaml", NEEDS="1:96,2:200", DONE_LOG=str(sweep_env["done_log"])
    )
    first = _run(sweep_env, template, indexes=[0, 1, 2])
    assert first.attempts == 6
    repeat = _run(sweep_env, template, indexes=[0, 1, 2], job_name_prefix="again", tier="auto")
    assert repeat.attempts == 3 and repeat.succeeded == 3
    assert {i: row["tier"] for i, row in _items(sweep_env).items()} == {0: 0, 1: 1, 2: 2}


def test_resume_after_the_orchestrator_is_sigkilled(sweep_env, prefect_api):
    """One chunk of 8, one job at a time: killed while index 3 runs, all 8 attempts are
    recorded and 4-7 never started. The resumed reports count no failure (issue 15.5)."""
    tmp = sweep_env["tmp"]
    marker, release = tmp / "marker", tmp / "release"
    template = write_template(
        tmp / "job.yaml",
        DONE_LOG=str(sweep_env["done_log"]),
        BLOCK_INDEX="3",
        MARKER=str(marker),
        RELEASE=str(release),
    )
    command = [
        sys.executable,
        "-m",
        "sluice.cli",
        "sweep",
        "--template-path",
        str(template),
        "--namespace",
        "test",
        "--job-name-prefix",
        "t",
        "--count",
        "8",
        "--tier",
        "0",
        "--schedule-start-gi",
        str(TIER0_GI),
        "--parallelism",
        "1",
        "--quiet",
        "--report-dir",
        str(sweep_env["report_dir"]),
    ]
    env = {
        **os.environ,
        "SLUICE_LEDGER_URL": sweep_env["ledger_url"],
        "PREFECT_API_URL": prefect_api,
    }
    orchestrator = subprocess.Popen(command, env=env)
    ledger = open_ledger(sweep_env["ledger_url"])
    _wait_for(lambda: marker.exists() and marker.read_text() and _finished(ledger) == 3)
    blocked = psutil.Process(int(marker.read_text()))
    orchestrator.send_signal(signal.SIGKILL)
    orchestrator.wait()
    psutil.wait_procs([blocked], timeout=30)
    assert not blocked.is_running() or blocked.status() == psutil.STATUS_ZOMBIE

    release.touch()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(sweep_env["done_log"].read_text().split(), key=int) == [str(i) for i in range(8)]
    latest = ledger.latest("sweep/test/t")
    assert {a.outcome for a in latest.values()} == {Outcome.SUCCEEDED}
    # the interrupted job and the ones never started are re-attached under their names and
    # continue their attempts: no failure, no extra attempt, nothing charged twice
    index3 = ledger.attempts("sweep/test/t", ["3"])
    assert [(a.outcome, a.job_name) for a in index3] == [(Outcome.SUCCEEDED, "t-3")]
    reports = sweep_env["report_dir"]
    assert not list(reports.glob("tier*-failures.txt"))
    summary = json.loads((reports / "summary.json").read_text())
    assert (summary["attempts"], summary["failed"], summary["gib_hours_failed"]) == (8, 0, 0)


def _finished(ledger) -> int:
    return sum(1 for a in ledger.latest("sweep/test/t").values() if not a.running)


def _wait_for(condition, timeout: float = 120.0) -> None:
    """Wait until ``condition()`` holds (a bounded wait on state, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_every_chunk_task_run_is_recorded_on_the_server(sweep_env, prefect_api):
    template = write_template(sweep_env["tmp"] / "job.yaml", DONE_LOG=str(sweep_env["done_log"]))
    state = _run(sweep_env, template, indexes=list(range(6)), chunk_size=2, return_state=True)
    assert state.is_completed()
    expected = {"chunk-0000", "chunk-0001", "chunk-0002"}
    _wait_for(lambda: expected <= set(_task_run_names(prefect_api, state)), timeout=60)


def test_escalation_is_a_prefect_retry_counted_to_the_max_tier(sweep_env, prefect_api):
    """An OOM climbs as a Prefect retry of the chunk's task run (one run per tier it
    reaches, never more than the tiers left: no 'Retry 1/4' with --max-tier 3), the task
    run's name carries no tier that would go stale, and each tier's Jobs are named anew."""
    template = write_template(
        sweep_env["tmp"] / "job.yaml", NEEDS="1:96,2:200", DONE_LOG=str(sweep_env["done_log"])
    )
    state = _run(
        sweep_env, template, indexes=[0, 1, 2, 3], chunk_size=2, max_tier=3, return_state=True
    )
    assert state.is_completed()
    _wait_for(lambda: len(_task_runs(prefect_api, state)) >= 3, timeout=60)
    runs = {r["name"]: r for r in _task_runs(prefect_api, state) if "chunk" in r["name"]}
    assert {name: run["run_count"] for name, run in runs.items()} == {
        "chunk-0000": 2,
        "chunk-0001": 3,
    }
    assert {run["empirical_policy"]["retries"] for run in runs.values()} == {3}
    ledger = open_ledger(sweep_env["ledger_url"])
    names = [a.job_name for a in ledger.attempts("sweep/test/t", ["2"])]
    assert names == ["t-2", "t-2-a1", "t-2-a2"]


def _task_runs(api_url: str, state) -> list[dict]:
    """Task runs the server recorded for the flow run (recorded from events, so eventually)."""
    response = httpx.post(
        f"{api_url}/task_runs/filter",
        json={"flow_runs": {"id": {"any_": [str(state.state_details.flow_run_id)]}}},
    )
    response.raise_for_status()
    return response.json()


def _task_run_names(api_url: str, state) -> list[str]:
    return [run["name"] for run in _task_runs(api_url, state)]


def test_the_report_page_draws_where_indexes_ended_and_renders_offline(sweep_env, browser):
    template = write_template(
        sweep_env["tmp"] / "job.yaml",
        NEEDS="1:96,2:200",
        FAIL="3",
        DONE_LOG=str(sweep_env["done_log"]),
    )
    with pytest.raises(SweepIncomplete):
        _run(sweep_env, template, indexes=[0, 1, 2, 3, 4, 5])
    reports = sweep_env["report_dir"]
    figures = open_report(browser, reports, 1800)
    assert [f["title"] for f in figures] == [
        "Indexes by final tier",
        "Peak against requested memory",
        "GiB-hours used and wasted, per tier",
    ]
    assert all(f["height"] > 100 for f in figures)
    assert "tier 2" in figures[0]["text"] and "failed" in figures[0]["text"]
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert "5 of 6 indexes succeeded" in browser.find_element("tag name", "li").text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "sweep-report.png"))


def test_sluice_report_refuses_a_place_without_a_page(tmp_path):
    assert_refused(BadInput(["report", str(tmp_path)], "PATH"), tmp_path / "home")
