"""Turn Job events into per-item results: one tracker per Kubernetes Job.

A per-index Job carries one item; an Indexed Job carries one item per
completion index. Trackers only read what the watch delivers, plus the pods of
a Job when something failed: one pods list per failed per-index Job, and one per
Indexed Job once nothing else of it is awaited, and one log read per item that did not
succeed (its tail, kept in the ledger). Never a poll.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluice.backends.kubernetes.classify import (
    classify_pod,
    completion_index,
    latest_pod,
    parse_indexes,
    succeeded,
    terminal_condition,
    timed_out,
)
from sluice.jobs import JobResult, Outcome

Obj = dict[str, Any]
PodLister = Callable[[Obj], list[Obj]]
LogTail = Callable[[Obj], str]


class Tracker:
    """The items of one Kubernetes Job that the caller still waits for."""

    def __init__(self, job_name: str, uid: str | None, indexed: bool, tail: LogTail):
        self.job_name = job_name
        self.tail = tail  # reads the end of a failed pod's log
        self.uid = uid
        self.indexed = indexed
        self.items: dict[int, str] = {}  # completion index (0 if per-index) -> item (spec name)
        self.pending: dict[int, str] = {}  # the items not yet reported
        self.last: Obj | None = None  # the newest version of the Job seen

    def add(self, index: int, item: str) -> None:
        self.items[index] = self.pending[index] = item

    @property
    def done(self) -> bool:
        return not self.pending

    def owns(self, job: Obj) -> bool:
        """Whether an event's Job is ours (not an older Job of the same name)."""
        return self.uid is None or job["metadata"].get("uid") == self.uid

    def update(self, job: Obj, pods: PodLister) -> list[JobResult]:
        """Results for items that ended, as of this version of the Job."""
        if self.uid is None:
            self.uid = job["metadata"].get("uid")
        ended = terminal_condition(job)
        if not self.indexed:
            if ended is None:
                return []
            kind, reason = ended
            if kind == "Complete":
                return self._report([succeeded(self.pending[0], job)])
            if reason == "DeadlineExceeded":
                return self._report([timed_out(self.pending[0], job, reason)])
            return self._report([self._failed(self.pending[0], latest_pod(pods(job)))])
        self.last = job
        status = job.get("status") or {}
        completed = parse_indexes(status.get("completedIndexes"))
        results = [succeeded(self.pending[i], job) for i in sorted(completed) if i in self.pending]
        failed = parse_indexes(status.get("failedIndexes")) - completed
        if ended is None:
            # Failed indexes are classified together once nothing else is awaited: one pods
            # list per Job, not one per failure event.
            if all(i in failed or i in completed for i in self.pending):
                results += self._classify(failed, pods)
            return self._report(results)
        rest = [i for i in self.pending if i not in completed and i not in failed]
        kind, reason = ended
        if kind == "Complete":
            results += [succeeded(self.pending[i], job) for i in rest]
        elif reason == "DeadlineExceeded":
            results += [timed_out(self.pending[i], job, reason) for i in rest]
        else:
            failed.update(rest)
        return self._report(results + self._classify(failed, pods))

    def _classify(self, indexes: set[int], pods: PodLister) -> list[JobResult]:
        """Failed indexes of the last seen Job, each from its latest pod (one pods list)."""
        indexes = {i for i in indexes if i in self.pending}
        if not indexes or self.last is None:
            return []
        by_index: dict[int | None, list[Obj]] = {}
        for pod in pods(self.last):
            by_index.setdefault(completion_index(pod), []).append(pod)
        return [
            self._failed(self.pending[i], latest_pod(by_index.get(i, []))) for i in sorted(indexes)
        ]

    def _failed(self, name: str, pod: Obj | None) -> JobResult:
        """A failed item's result from its last pod, with the tail of that pod's log."""
        result = classify_pod(name, pod)
        if pod is None:
            return result
        return result.model_copy(update={"log_tail": self.tail(pod) or None})

    def vanished(self, why: str) -> list[JobResult]:
        """The Job is gone before every item ended: the rest are lost."""
        return self._report(
            [
                JobResult(name=name, outcome=Outcome.LOST, message=f"Job {self.job_name} {why}")
                for name in self.pending.values()
            ]
        )

    def expire(self, seconds: float | None, pods: PodLister) -> list[JobResult]:
        """The wait timed out: indexes that already failed are classified, the rest time out."""
        classified: list[JobResult] = []
        if self.indexed and self.last is not None:
            failed = parse_indexes((self.last.get("status") or {}).get("failedIndexes"))
            classified = self._report(self._classify(failed, pods))
        return classified + self._report(
            [
                JobResult(
                    name=name,
                    outcome=Outcome.TIMEOUT,
                    message=f"still running after the wait timeout of {seconds:g} s",
                )
                for name in self.pending.values()
            ]
        )

    def _report(self, results: list[JobResult]) -> list[JobResult]:
        index_of = {name: i for i, name in self.pending.items()}
        for result in results:
            self.pending.pop(index_of[result.name], None)
        return results
