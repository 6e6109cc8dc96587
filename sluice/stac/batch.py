"""What a STAC batch is, below Prefect: its modes, backends, home and log tree.

Shared by the flow (``flows/stac_batch.py``) and the CLI, which checks the backend
before any Prefect server starts.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import BeforeValidator

from sluice.backends.base import Backend, SizesJobs
from sluice.backends.factory import create_backend
from sluice.names import BATCH_NAME
from sluice.settings import sluice_home
from sluice.stac.logs import LogTree

if TYPE_CHECKING:
    from sluice.backends.nomad import NomadSettings


def _split_sources(value: object) -> object:
    """The seed's ``--benchmark_sources``: one value, comma or space separated (or several)."""
    values = [value] if isinstance(value, str) else value
    if isinstance(values, list):
        return [part for v in values for part in str(v).replace(",", " ").split()]
    return value


BenchmarkSources = Annotated[list[str], BeforeValidator(_split_sources)]
"""Benchmark collections, as a list or as the seed's comma/space separated text."""


class Mode(StrEnum):
    """``pipeline``: NGWPC's pipeline job per item; ``stage``: its stages run from Prefect."""

    PIPELINE = "pipeline"
    STAGE = "stage"


class StacBackend(StrEnum):
    LOCAL = "local"
    NOMAD = "nomad"


class OnMissing(StrEnum):
    """Item ids the STAC API does not hold (listed either way): ``fail`` runs the rest and
    exits non-zero saying how many; ``continue`` runs the rest and does not count them
    as failures; ``stop`` refuses the batch before anything runs."""

    FAIL = "fail"
    CONTINUE = "continue"
    STOP = "stop"


def run_name(batch: str) -> str:
    """The ledger run (and lease) of a batch."""
    return f"stac/{batch}"


def home_dir(batch: str) -> Path:
    return sluice_home() / "stac" / BATCH_NAME.check(batch, "batch name")


def job_kinds(mode: Mode) -> list[str]:
    """The kinds of job a mode submits (Nomad's parameterized jobs): ``pipeline``, or the
    generic ``sluice-job`` for stages."""
    return ["pipeline"] if mode is Mode.PIPELINE else ["sluice-job"]


def job_memory(backend: Backend, kind: str) -> int | None:
    """The memory a job of ``kind`` first runs with, where the backend knows it (Nomad: the
    registered job's); None: no limit (local processes)."""
    return backend.job_memory_bytes(kind) if isinstance(backend, SizesJobs) else None


def check_backend(
    kind: StacBackend, mode: Mode, nomad: NomadSettings | None, nomad_spec_dir: str | None
) -> None:
    """Reachable, credentials accepted, the mode's kinds of job known (before any dispatch;
    the local backend has nothing to reach and is not started for it)."""
    if kind is StacBackend.LOCAL:
        return
    runner = make_backend(kind, "preflight", None, nomad, nomad_spec_dir)
    try:
        runner.preflight(job_kinds(mode))
    finally:
        runner.close()


def make_backend(
    kind: StacBackend,
    batch: str,
    parallelism: int | None,
    nomad: NomadSettings | None,
    nomad_spec_dir: str | None,
) -> Backend:
    """The local backend (job logs under the batch's home) or Nomad (``nomad`` settings, a
    ``NomadCluster`` block's, else the ``NOMAD_*`` environment)."""
    return create_backend(
        kind.value,
        parallelism=parallelism,
        log_dir=home_dir(batch) / "jobs",
        nomad=nomad,
        nomad_spec_dir=Path(nomad_spec_dir) if nomad_spec_dir else None,
    )


def log_tree(batch: str) -> LogTree:
    """The batch's saved job logs, in the seed's layout (``local_reports.py --log_dir``)."""
    return LogTree(home_dir(batch) / "logs", batch)
