"""Run directories from ``_base``, per-run state and run classification."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sluice.watersheds.rundir import (
    RunMetadata,
    RunState,
    classify,
    done_stages,
    mark_done,
    provision,
    write_metadata,
)
from sluice.watersheds.stages import Stage


@pytest.fixture
def base(tmp_path: Path) -> Path:
    base = tmp_path / "_base"
    (base / "_pups" / "omni").mkdir(parents=True)
    (base / ".cache").mkdir()
    (base / ".cache" / "x").write_text("cached")
    (base / "ron.nodb").write_text(json.dumps({"py/state": {"wd": "/old/_base", "name": "r"}}))
    (base / "plain.nodb").write_text(json.dumps({"wd": "/old/_base"}))
    (base / "_pups" / "omni" / "omni.nodb").write_text(json.dumps({"py/state": {"wd": "/old"}}))
    (base / "ron.nodb.lock").write_text("locked")
    (base / "READONLY").write_text("")
    (base / "dem.tif").write_bytes(b"\x00\x01")
    return base


def test_provision_rewrites_every_nodb_and_drops_locks_and_caches(base: Path, tmp_path: Path):
    run_dir = tmp_path / "runs" / "Blue-Creek-001"
    provision(base, run_dir)
    assert json.loads((run_dir / "ron.nodb").read_text()) == {
        "py/state": {"wd": str(run_dir), "name": "r"}
    }
    assert json.loads((run_dir / "plain.nodb").read_text()) == {"wd": str(run_dir)}
    nested = json.loads((run_dir / "_pups" / "omni" / "omni.nodb").read_text())
    assert nested["py/state"]["wd"] == str(run_dir)
    assert (run_dir / "dem.tif").read_bytes() == b"\x00\x01"
    for gone in ("ron.nodb.lock", "READONLY", ".cache"):
        assert not (run_dir / gone).exists()
    assert json.loads((base / "ron.nodb").read_text())["py/state"]["wd"] == "/old/_base"


def test_provision_replaces_an_old_run_dir(base: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r"
    provision(base, run_dir)
    mark_done(run_dir, Stage.FETCH_DEM, datetime.now(UTC))
    (run_dir / "stale-output").write_text("old")
    provision(base, run_dir)
    assert not (run_dir / "stale-output").exists()
    assert done_stages(run_dir) == {}


def test_classify_follows_wepppy_states(base: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    stages = [Stage.FETCH_DEM, Stage.BUILD_SOILS]
    now = datetime.now(UTC)
    assert classify(runs, "missing", stages) is RunState.MISSING
    assert classify(runs, "../escape", stages) is RunState.INVALID
    assert classify(runs, "..", stages) is RunState.INVALID
    provision(base, runs / "partial")
    mark_done(runs / "partial", Stage.FETCH_DEM, now)
    assert classify(runs, "partial", stages) is RunState.INCOMPLETE
    write_metadata(
        runs / "partial",
        RunMetadata(runid="partial", batch_name="b", status="failed", started_at=now),
    )
    assert classify(runs, "partial", stages) is RunState.FAILED
    mark_done(runs / "partial", Stage.BUILD_SOILS, now)
    assert classify(runs, "partial", stages) is RunState.COMPLETE
