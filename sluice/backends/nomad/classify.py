"""A dispatched job's outcome from its allocations' client status and task events.

The job, not one allocation, is followed: an allocation that was lost or failed and
replaced by Nomad (``NextAllocation`` set) is history; the outcome comes from the
allocations nothing replaced. OOM is Nomad's ``oom_killed`` detail on the task's
``Terminated`` event (or exit 137, the SIGKILL the kernel OOM killer sends).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sluice.jobs import JobResult, Outcome

_SEVERITY = [Outcome.OOM, Outcome.FAILED, Outcome.LOST, Outcome.CANCELLED, Outcome.SUCCEEDED]
_FAILURE_EVENTS = ("Setup Failure", "Driver Failure", "Failed Validation", "Template")


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time with nanoseconds (Nomad's), to microseconds; None if unset."""
    if not value or value.startswith("0001-"):
        return None
    head, _, fraction = value.rstrip("Z").partition(".")
    micros = (fraction + "000000")[:6] if fraction else "000000"
    return datetime.fromisoformat(f"{head}.{micros}").replace(tzinfo=UTC)


def _terminated(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((e for e in reversed(events) if e.get("Type") == "Terminated"), None)


def _oom(event: dict[str, Any]) -> bool:
    details = event.get("Details") or {}
    return str(details.get("oom_killed", "")).lower() == "true" or event.get("ExitCode") == 137


def classify_allocation(alloc: dict[str, Any]) -> tuple[Outcome, int | None, str]:
    """``(outcome, exit_code, message)`` of one terminal allocation."""
    status = alloc.get("ClientStatus")
    where = f"allocation {alloc.get('ID', '?')[:8]}"
    if status == "lost":
        return Outcome.LOST, None, f"{where} lost: {alloc.get('ClientDescription', '')}"
    states = alloc.get("TaskStates") or {}
    if status == "complete":
        killed = any(
            e.get("Type") == "Killed" for s in states.values() for e in s.get("Events") or []
        )
        if alloc.get("DesiredStatus") == "stop" and killed:
            return Outcome.CANCELLED, None, f"{where} stopped"
        return Outcome.SUCCEEDED, 0, ""
    if status != "failed":
        return Outcome.CANCELLED, None, f"{where} ended {status}/{alloc.get('DesiredStatus')}"
    for task, state in states.items():
        if not state.get("Failed"):
            continue
        events = state.get("Events") or []
        end = _terminated(events)
        if end is not None and _oom(end):
            return Outcome.OOM, end.get("ExitCode"), f"task {task}: {end.get('DisplayMessage')}"
        if end is not None:
            return Outcome.FAILED, end.get("ExitCode"), f"task {task}: {end.get('DisplayMessage')}"
        cause = next((e for e in reversed(events) if e.get("Type") in _FAILURE_EVENTS), None)
        detail = cause.get("DisplayMessage") if cause else "failed without a Terminated event"
        return Outcome.FAILED, None, f"task {task}: {detail}"
    return Outcome.FAILED, None, f"{where} failed: {alloc.get('ClientDescription', '')}"


def classify(name: str, allocations: list[dict[str, Any]], *, stopped: bool = False) -> JobResult:
    """The result of the dead dispatched job ``name`` from all its allocations."""
    if not allocations:
        outcome = Outcome.CANCELLED if stopped else Outcome.LOST
        return JobResult(name=name, outcome=outcome, message="no allocation was ever placed")
    final = [a for a in allocations if not a.get("NextAllocation")] or allocations
    judged = sorted((classify_allocation(a) for a in final), key=lambda r: _SEVERITY.index(r[0]))
    outcome, exit_code, message = judged[0]
    replaced = len(allocations) - len(final)
    if replaced:
        note = f"{replaced} earlier allocation(s) lost or failed and were replaced by Nomad"
        message = f"{message}; {note}" if message else note
    states = [s for a in allocations for s in (a.get("TaskStates") or {}).values()]
    started = [t for s in states if (t := parse_time(s.get("StartedAt")))]
    finished = [t for s in states if (t := parse_time(s.get("FinishedAt")))]
    return JobResult(
        name=name,
        outcome=outcome,
        exit_code=exit_code,
        started_at=min(started) if started else None,
        finished_at=max(finished) if finished else None,
        message=message or None,
    )
