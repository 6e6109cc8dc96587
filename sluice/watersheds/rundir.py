"""One watershed's run directory: made from ``_base``, its per-stage done times, its metadata.

The state that decides skip-done lives in the run directory itself, as in
wepppy: ``stage_status.json`` maps each finished stage to the time it finished,
and ``run_metadata.json`` tells how the last attempt at the run went.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel

from sluice.watersheds.batch import read_json_object, write_json_atomic
from sluice.watersheds.features import runid_problem
from sluice.watersheds.stages import Stage

STAGE_STATUS = "stage_status.json"
RUN_METADATA = "run_metadata.json"
LOCK_PATTERNS = ("*.lock", "*.nodb.lock", "READONLY")
CACHE_DIRS = (".cache", "__pycache__", ".nodb-cache")
WORKDIR_FIELD = ("py/state", "wd")


def _ignored(directory: str, names: list[str]) -> set[str]:
    base = Path(directory)
    ignored = {name for name in names if name in CACHE_DIRS or name in (STAGE_STATUS, RUN_METADATA)}
    for pattern in LOCK_PATTERNS:
        ignored |= {path.name for path in base.glob(pattern)}
    return ignored


def rewrite_workdir(nodb: Path, run_dir: Path) -> None:
    """Point a NoDb state file at ``run_dir`` (``py/state.wd``, else a top-level ``wd``)."""
    try:
        state = json.loads(nodb.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return
    if not isinstance(state, dict):
        return
    outer, field = WORKDIR_FIELD
    target = state[outer] if isinstance(state.get(outer), dict) else state
    target[field] = str(run_dir)
    write_json_atomic(nodb, state)


def provision(base: Path, run_dir: Path) -> None:
    """Copy ``base`` to ``run_dir`` afresh, rewriting every ``*.nodb`` and leaving locks and caches.

    wepppy keeps NoDb locks and caches in Redis; their on-disk analogues here
    are lock files (``*.lock``, ``READONLY``) and cache directories.
    """
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = run_dir.with_name(f".{run_dir.name}.provisioning")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(base, staging, symlinks=True, ignore=_ignored)
    for nodb in staging.rglob("*.nodb"):
        rewrite_workdir(nodb, run_dir)
    staging.rename(run_dir)


def done_stages(run_dir: Path) -> dict[str, str]:
    """Stage -> ISO time it finished, for stages finished in ``run_dir``."""
    return {k: v for k, v in read_json_object(run_dir / STAGE_STATUS).items() if v}


def mark_done(run_dir: Path, stage: Stage, when: datetime) -> None:
    done = {**done_stages(run_dir), stage.value: when.isoformat()}
    write_json_atomic(run_dir / STAGE_STATUS, done)


class RunMetadata(BaseModel):
    """``run_metadata.json``, the fields wepppy writes (``job`` replaces ``rq_job_id``)."""

    runid: str
    batch_name: str
    status: str
    started_at: datetime
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    job: str | None = None
    task_status: dict[str, str | None] = {}
    error: dict[str, str] | None = None


def read_metadata(run_dir: Path) -> RunMetadata | None:
    raw = read_json_object(run_dir / RUN_METADATA)
    try:
        return RunMetadata.model_validate(raw) if raw else None
    except ValueError:
        return None


def write_metadata(run_dir: Path, metadata: RunMetadata) -> None:
    write_json_atomic(run_dir / RUN_METADATA, json.loads(metadata.model_dump_json()))


class RunState(StrEnum):
    COMPLETE = "complete"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    MISSING = "missing"
    INVALID = "invalid"


RETRY_ELIGIBLE = {RunState.FAILED, RunState.INCOMPLETE, RunState.MISSING}


def classify(runs: Path, runid: str, stages: list[Stage]) -> RunState:
    """wepppy's run states: invalid, missing, failed, incomplete, complete."""
    if runid_problem(runid) or (runs / runid).resolve().parent != runs.resolve():
        return RunState.INVALID
    run_dir = runs / runid
    if not run_dir.is_dir():
        return RunState.MISSING
    done = done_stages(run_dir)
    if all(stage.value in done for stage in stages):
        return RunState.COMPLETE
    metadata = read_metadata(run_dir)
    if metadata is not None and metadata.status == "failed":
        return RunState.FAILED
    return RunState.INCOMPLETE
