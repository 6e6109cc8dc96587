"""The ledger: every attempt of every item, written durably as it happens.

A *run* is one named batch (a sweep, a STAC batch, a watershed batch); an
*item* is one unit inside it (an index, an AOI, a watershed stage). The
*workload* names what the item runs (for example a template's fingerprint) so
that memory history carries across runs of the same workload.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import psutil
from pydantic import BaseModel, Field

from sluice.errors import SluiceInputError
from sluice.jobs import JobResult, Outcome


class PlannedAttempt(BaseModel):
    """An attempt about to be submitted."""

    item: str
    job_name: str
    tier: int | None = None
    memory_bytes: int | None = None


class Attempt(BaseModel):
    """One recorded attempt; ``outcome`` is None while it runs.

    ``started_at`` is when it was recorded (before submission) and ``finished_at`` when it
    ended; ``runtime_*`` are the process's, pod's or task's own start and end."""

    id: int
    run: str
    item: str
    workload: str
    job_name: str
    tier: int | None
    memory_bytes: int | None
    outcome: Outcome | None
    exit_code: int | None
    reason: str | None
    started_at: datetime
    finished_at: datetime | None
    peak_memory_bytes: int | None
    message: str | None
    runtime_started_at: datetime | None = None  # the runtime's own start and end, when the
    runtime_finished_at: datetime | None = None  # backend reported them

    @property
    def running(self) -> bool:
        return self.outcome is None


class Holder(BaseModel):
    """Who holds a run's lease: a process (host, pid, start time) and one acquisition of it."""

    host: str
    pid: int
    process_started_at: datetime
    token: str = Field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def this_process(cls) -> Holder:
        started = psutil.Process().create_time()
        return cls(
            host=socket.gethostname(),
            pid=os.getpid(),
            process_started_at=datetime.fromtimestamp(started, UTC),
        )

    def is_gone(self) -> bool:
        """True when this holder ran on this host and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            started = psutil.Process(self.pid).create_time()
        except psutil.NoSuchProcess:
            return True
        return abs(started - self.process_started_at.timestamp()) > 1  # the pid was reused

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"


class RunLeased(SluiceInputError):
    """Another live process is running this run."""

    def __init__(self, run: str, holder: Holder, since: datetime, expires: datetime) -> None:
        super().__init__(
            f"run {run!r} is already running: held by {holder} since {since:%Y-%m-%d %H:%M:%S} UTC"
            f" (lease renewed until {expires:%H:%M:%S} UTC); wait for it to end or stop it"
        )


class Ledger(Protocol):
    """Durable attempt records. Every method commits before it returns."""

    def begin(self, run: str, workload: str, planned: Sequence[PlannedAttempt]) -> list[int]:
        """Record attempts as started (one transaction); their ids, in order."""
        ...

    def finish(self, attempt_id: int, result: JobResult) -> None:
        """Record how an attempt ended."""
        ...

    def finish_many(self, ended: Sequence[tuple[int, JobResult]]) -> None:
        """Record several endings in one transaction."""
        ...

    def attempts(self, run: str, items: Iterable[str] | None = None) -> list[Attempt]:
        """Attempts of a run (optionally of some items), oldest first."""
        ...

    def latest(self, run: str, items: Iterable[str] | None = None) -> dict[str, Attempt]:
        """The newest attempt of every item of a run (or of the given items)."""
        ...

    def last_id(self, run: str) -> int:
        """The newest attempt id of a run (0 if none): a baseline for 'since now'."""
        ...

    def kept_log(self, attempt_id: int) -> str | None:
        """The end of an attempt's log the backend kept when it failed (None if none)."""
        ...

    def lowest_succeeded_tiers(self, workload: str) -> dict[str, int]:
        """For each item of a workload, the lowest tier at which it ever succeeded."""
        ...

    def forget(self, run: str, items: Iterable[str] | None = None) -> int:
        """Delete a run's attempts (all, or of some items); how many went."""
        ...

    def runs(self) -> list[str]:
        """Names of the runs recorded."""
        ...

    def acquire(self, run: str, holder: Holder, ttl: float) -> None:
        """Take the run's lease for ``ttl`` seconds, or raise ``RunLeased`` naming its holder.

        A lease whose holder is gone (expired, or its process vanished from this
        host) is taken over."""
        ...

    def renew(self, run: str, holder: Holder, ttl: float) -> bool:
        """Extend a held lease by ``ttl`` seconds from now; False if it was lost."""
        ...

    def release(self, run: str, holder: Holder) -> None:
        """Give the lease back (nothing if it is no longer ours)."""
        ...

    def close(self) -> None: ...
