"""Stages that are Python callables run in-process behind the ``Backend`` protocol.

The job's argv is ``["callable:module:function"]``; ``wait`` calls
``function(run_dir=Path, runid=str, stage=str)`` in the waiting thread. A
return is success, an exception a failure (its text is the message). Running
behind the protocol keeps callables in the same ledger-recorded path as
commands.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sluice.errors import SluiceInputError
from sluice.jobs import JobResult, JobSpec, Outcome
from sluice.watersheds.stages import CALLABLE_PREFIX


def import_callable(path: str) -> Callable[..., object]:
    """``module:function`` -> the function; SluiceInputError naming the path if not importable."""
    module_name, _, attribute = path.partition(":")
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise SluiceInputError(f"stage callable {path!r}: {exc}") from None
    if not callable(target):
        raise SluiceInputError(f"stage callable {path!r}: not callable")
    return target


class InProcessBackend:
    """Runs ``callable:`` jobs in the calling thread when they are awaited."""

    name = "in-process"

    def __init__(self) -> None:
        self._pending: dict[str, JobSpec] = {}
        self._logs: dict[str, str] = {}

    def preflight(self) -> None:
        """Nothing to reach: the callables run in this process."""

    def submit(self, jobs: Sequence[JobSpec], *, replace: bool = False) -> list[str]:
        for job in jobs:
            if not job.command[0].startswith(CALLABLE_PREFIX):
                raise ValueError(f"job {job.name}: not a callable job")
            self._pending[job.name] = job
        return [job.name for job in jobs]

    def wait(self, names: Iterable[str], *, timeout: float | None = None) -> Iterator[JobResult]:
        for name in names:
            job = self._pending.pop(name, None)
            if job is None:
                yield JobResult(name=name, outcome=Outcome.LOST, message="never submitted")
                continue
            yield self._call(job)

    def _call(self, job: JobSpec) -> JobResult:
        started = datetime.now(UTC)
        function = import_callable(job.command[0].removeprefix(CALLABLE_PREFIX))
        outcome, exit_code, message = Outcome.SUCCEEDED, 0, None
        try:
            function(
                run_dir=Path(job.workdir or "."),
                runid=job.env["SLUICE_RUNID"],
                stage=job.env["SLUICE_STAGE"],
            )
        except Exception as exc:  # noqa: BLE001 - any error of the stage is its failure
            self._logs[job.name] = traceback.format_exc()
            outcome, exit_code, message = Outcome.FAILED, 1, f"{type(exc).__name__}: {exc}"
        return JobResult(
            name=job.name,
            outcome=outcome,
            exit_code=exit_code,
            started_at=started,
            finished_at=datetime.now(UTC),
            message=message,
        )

    def logs(self, name: str) -> str:
        return self._logs.get(name, "")

    def delete(self, names: Iterable[str]) -> None:
        for name in names:
            self._pending.pop(name, None)

    def close(self) -> None:
        self._pending.clear()
