"""How a Job (or one index of an Indexed Job) ended, from the API's own signals.

Decisions, in order of precedence for a failed pod:

1. **lost** — the pod was disrupted, not the work: a ``DisruptionTarget``
   condition (eviction, preemption, taint-manager deletion, kubelet shutdown),
   a pod ``reason`` such as ``Evicted`` / ``NodeLost`` / ``Preempting``, or no
   pod left at all. This wins over ``OOMKilled``: runtimes report ``OOMKilled``
   with exit 143 for drained pods whose cgroup once saw an OOM kill
   (kubernetes#140716).
2. **oom** — the container terminated with reason ``OOMKilled`` (whatever the
   exit code), or with exit code 137 (SIGKILL) while it had a memory limit.
3. **failed** — any other termination, with its exit code.

``OOMKilled`` with exit code 0 (kubernetes#131530): a process *inside* the
container was OOM-killed but the main process exited 0, so the pod Succeeded
and the Job is Complete. Sluice trusts the exit code: a Complete Job is
``succeeded`` (pods of complete Jobs are not even read). Only in a *failed* Job
does ``OOMKilled`` + exit 0 count, as ``oom``.

A Job that failed with reason ``DeadlineExceeded`` is a **timeout**.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sluice.jobs import JobResult, Outcome

Obj = dict[str, Any]

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
LOST_POD_REASONS = frozenset(
    {
        "Evicted",
        "NodeLost",
        "Preempting",
        "Shutdown",
        "NodeShutdown",
        "Terminated",
        "UnexpectedAdmissionError",
    }
)
SIGKILL_EXIT = 137


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def terminal_condition(job: Obj) -> tuple[str, str] | None:
    """``("Complete"|"Failed", reason)`` once the Job has ended, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition["type"], condition.get("reason") or ""
    return None


def completion_index(pod: Obj) -> int | None:
    meta = pod.get("metadata") or {}
    value = (meta.get("labels") or {}).get(INDEX_KEY) or (meta.get("annotations") or {}).get(
        INDEX_KEY
    )
    return int(value) if value is not None else None


def latest_pod(pods: list[Obj]) -> Obj | None:
    """The most recently created pod (the last attempt)."""
    if not pods:
        return None
    return max(
        pods,
        key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]),
    )


def parse_indexes(text: str | None) -> set[int]:
    """``"1,3-5"`` (``status.completedIndexes`` / ``failedIndexes``) -> {1, 3, 4, 5}."""
    found: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        found.update(range(int(low), int(high or low) + 1))
    return found


def _main_container(pod: Obj) -> tuple[Obj | None, Obj | None]:
    """(container spec, container status) of the pod's first container."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    spec = containers[0]
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    status = next((s for s in statuses if s.get("name") == spec.get("name")), None)
    return spec, status or (statuses[0] if statuses else None)


def _disruption(pod: Obj) -> str | None:
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            return condition.get("reason") or "DisruptionTarget"
    if status.get("reason") in LOST_POD_REASONS:
        return status["reason"]
    return None


def classify_pod(name: str, pod: Obj | None) -> JobResult:
    """The result of a failed attempt from its (last) pod; ``pod=None`` means no pod left."""
    if pod is None:
        return JobResult(name=name, outcome=Outcome.LOST, message="no pod left to inspect")
    status = pod.get("status") or {}
    started = parse_time(status.get("startTime"))
    disruption = _disruption(pod)
    if disruption:
        detail = status.get("message") or ""
        return JobResult(
            name=name,
            outcome=Outcome.LOST,
            started_at=started,
            message=f"pod {pod['metadata']['name']} {disruption}{': ' + detail if detail else ''}",
        )
    if status.get("reason") == "DeadlineExceeded":  # the pod's own activeDeadlineSeconds
        return JobResult(
            name=name,
            outcome=Outcome.TIMEOUT,
            started_at=started,
            message=status.get("message") or "pod deadline exceeded",
        )
    spec, container = _main_container(pod)
    state = (container or {}).get("state") or {}
    terminated = state.get("terminated") or ((container or {}).get("lastState") or {}).get(
        "terminated"
    )
    if not terminated:
        return JobResult(
            name=name,
            outcome=Outcome.FAILED,
            started_at=started,
            message=status.get("message") or status.get("reason") or "pod failed before running",
        )
    code = terminated.get("exitCode")
    reason = terminated.get("reason") or ""
    limited = bool(((spec or {}).get("resources") or {}).get("limits", {}).get("memory"))
    oom = reason == "OOMKilled" or (code == SIGKILL_EXIT and limited)
    message: str | None
    if oom:
        why = "OOMKilled" if reason == "OOMKilled" else "SIGKILL under a memory limit"
        note = " (kubernetes#131530: OOMKilled with exit code 0)" if code == 0 else ""
        message = f"{why}, exit code {code}{note}"
    else:
        message = terminated.get("message") or reason or None
    return JobResult(
        name=name,
        outcome=Outcome.OOM if oom else Outcome.FAILED,
        exit_code=code,
        started_at=started,
        finished_at=parse_time(terminated.get("finishedAt")),
        message=message,
    )


def succeeded(name: str, job: Obj) -> JobResult:
    status = job.get("status") or {}
    return JobResult(
        name=name,
        outcome=Outcome.SUCCEEDED,
        exit_code=0,
        started_at=parse_time(status.get("startTime")),
        finished_at=parse_time(status.get("completionTime")),
    )


def timed_out(name: str, job: Obj, reason: str) -> JobResult:
    status = job.get("status") or {}
    return JobResult(
        name=name,
        outcome=Outcome.TIMEOUT,
        started_at=parse_time(status.get("startTime")),
        message=f"Job {job['metadata']['name']} {reason}",
    )
