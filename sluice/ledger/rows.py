"""Conversions between attempt rows and models, shared by the SQL ledgers."""

from __future__ import annotations

from datetime import UTC, datetime

from sluice.jobs import JobResult, Outcome
from sluice.ledger.base import Attempt


def _parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def attempt_from_row(row: tuple) -> Attempt:
    (
        id_,
        run,
        item,
        workload,
        job_name,
        tier,
        memory,
        outcome,
        exit_code,
        reason,
        started,
        finished,
        peak,
        message,
    ) = row
    return Attempt(
        id=id_,
        run=run,
        item=item,
        workload=workload,
        job_name=job_name,
        tier=tier,
        memory_bytes=memory,
        outcome=Outcome(outcome) if outcome else None,
        exit_code=exit_code,
        reason=reason,
        started_at=_parse_time(started),
        finished_at=_parse_time(finished),
        peak_memory_bytes=peak,
        message=message,
    )


def finish_params(attempt_id: int, result: JobResult) -> tuple:
    finished = result.finished_at or datetime.now(UTC)
    return (
        result.outcome.value,
        result.exit_code,
        result.reason,
        finished.isoformat(),
        result.peak_memory_bytes,
        result.message,
        attempt_id,
    )
