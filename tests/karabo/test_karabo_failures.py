"""A Karabo run that fails is reported, not raised: one line naming the report, exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sluice.karabo import standin_ingestor

pytestmark = pytest.mark.slow


def karabo_run(areas: dict[str, Path], tmp_path: Path, obs_id: str, *flags: str):
    argv = [
        sys.executable, "-m", "sluice.cli", "karabo", "run",
        "--start-freq-hz", "1e9", "--end-freq-hz", "1.002e9", "--freq-inc-hz", "1e6",
        "--num-time-stamps", "2", "--imaging-npixel", "8",
        "--obs-id", obs_id, "--file-prefix", f"{obs_id}_", "--product", "dirty",
        "--staging", str(areas["staging"]), "--processed", str(areas["processed"]),
        "--failed", str(areas["failed"]), "--scratch-dir", str(tmp_path / "scratch"),
        "--report-dir", str(tmp_path / "reports"), "--verify-timeout-seconds", "60", *flags,
    ]  # fmt: skip
    env = {**os.environ, "SLUICE_HOME": str(tmp_path / "home")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    return done, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def flow_run_state(api: str, obs_id: str) -> str:
    response = httpx.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_DESC"})
    runs = [r for r in response.json() if r["parameters"].get("obs_id") == obs_id]
    return runs[0]["state"]["type"]


def test_a_failed_simulation_is_one_line_naming_the_end_of_its_log(prefect_api, areas, tmp_path):
    # the stand-in cannot make its output folder: it dies with a Python traceback of its own
    (tmp_path / "scratch" / "sim").mkdir(parents=True)
    (tmp_path / "scratch" / "sim" / "testing").write_text("in the way")

    done, shown = karabo_run(areas, tmp_path, "sim")

    assert done.returncode == 1, shown
    assert "Traceback" not in done.stdout + done.stderr, shown
    log = tmp_path / "reports" / "sim-simulation.log"
    assert done.stderr.strip().splitlines()[-1] == (
        f"incomplete: simulation job karabo-sim did not succeed (exit:1); the end of its log: {log}"
    ), shown
    assert "FileExistsError" in log.read_text()  # the job's own traceback, kept in the report
    assert flow_run_state(prefect_api, "sim") == "FAILED"


def test_products_the_ingestor_fails_are_one_line_naming_the_ingest_report(
    prefect_api, areas, tmp_path
):
    # an external ingestor that files everything under "failed" (as for a Rucio outage)
    staging, failed = str(areas["staging"]), str(areas["failed"])
    with standin_ingestor.running(staging, failed, failed):
        done, shown = karabo_run(areas, tmp_path, "lost", "--ingestor", "external")

    assert done.returncode == 1, shown
    assert "Traceback" not in done.stdout + done.stderr, shown
    report = tmp_path / "reports" / "lost-ingest.json"
    assert done.stderr.strip().splitlines()[-1] == (
        "incomplete: 1 of 1 product(s) not ingested: testing/lost_dirty.fits (failed); "
        f"see {report}"
    ), shown
    assert '"fate": "failed"' in report.read_text()
    assert flow_run_state(prefect_api, "lost") == "FAILED"
