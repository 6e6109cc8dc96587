"""The local backend: every job is a local process under a real memory limit.

Each attempt runs in its own memory cgroup (see ``sluice.backends.cgroups``):
the kernel OOM-kills an overrun exactly as in a pod, and the outcome is read
from the cgroup's OOM-kill counter and the exit status. Where no cgroup can be
made, ``RLIMIT_AS`` bounds the job instead (see ``docs/local-backend.md``).

Jobs are spawned by one supervisor child process (``sluice.backends.supervisor``)
that starts each job inside its cgroup with one vfork + exec, watches it
through a pidfd, and records each ending with ``<log dir>/<name>.log`` (see
``supervisor.record_ending``) before telling this process. A later backend over
the same log directory adopts those endings, so a job that finished just
before its orchestrator was killed never runs again. Here, a queue holds jobs
until the supervisor has fewer than ``parallelism + LOOKAHEAD`` of them (it runs
``parallelism`` at once and starts the next as one ends, with no round trip to this
process), and one reader thread hands each ending to the one waiter that asked for it.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice.backends import supervisor
from sluice.backends.cgroups import PREFIX, CgroupParent, CgroupUnavailable, MemoryCgroup
from sluice.errors import BackendUnavailable
from sluice.jobs import JobResult, JobSpec, Outcome
from sluice.settings import sluice_home, sluice_settings

log = logging.getLogger(__name__)
LOOKAHEAD = 64  # jobs handed to the supervisor beyond those it runs: the next ones ready


def _now() -> datetime:
    return datetime.now(UTC)


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@dataclass(eq=False)
class _Job:
    """One submitted job until it ends; guarded by the backend lock."""

    name: str
    id: int
    spec: JobSpec | None  # dropped once handed to the supervisor
    env: dict[str, str | None]  # environment changes since start, and put_secrets
    fresh: bool = False  # replaces any recorded ending of its name
    running: bool = False
    ended: bool = False
    reported: bool = True  # False once replaced: its ending is nobody's business


class LocalBackend:
    """Runs jobs as local processes, at most ``parallelism`` at a time.

    Args:
        parallelism: How many jobs run at once (more queue inside the backend).
        log_dir: Where ``<job name>.log`` files (and their recorded endings) go; default
            ``$SLUICE_HOME/logs/local``.
        cgroups: Require memory cgroups (True), force the ``RLIMIT_AS`` fallback (False),
            or (None) follow ``$SLUICE_LOCAL_CGROUPS`` (``off`` or ``on``), else use
            cgroups where the machine offers them.
    """

    name = "local"

    def __init__(
        self,
        parallelism: int | None = None,
        log_dir: Path | None = None,
        *,
        cgroups: bool | None = None,
    ) -> None:
        self.parallelism = parallelism or os.cpu_count() or 1
        if self.parallelism < 1:
            raise ValueError(f"parallelism: {parallelism!r} must be at least 1")
        self.log_dir = Path(log_dir) if log_dir else sluice_home() / "logs" / "local"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._cgroups = self._cgroup_parent(cgroups)
        self._environment = dict(os.environ)
        self._secrets: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._active: dict[str, _Job] = {}  # queued or running, by name
        self._running: dict[int, _Job] = {}  # handed to the supervisor, by id
        self._queue: deque[_Job] = deque()
        self._unclaimed: dict[str, JobResult] = {}  # ended, no waiter has taken it yet
        self._waiters: dict[str, list[queue.SimpleQueue[JobResult]]] = {}
        self._closing = self._broken = False
        self._supervisor = self._start_supervisor()
        assert self._supervisor.stdin and self._supervisor.stdout  # both started as PIPE
        self._requests, self._endings = self._supervisor.stdin, self._supervisor.stdout
        # The reader runs in its creator's context: its warnings land in the same flow run's logs.
        self._reader = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._read_endings,),
            name="sluice-local",
            daemon=True,
        )
        self._reader.start()

    @property
    def memory_limits(self) -> str:
        """How job memory is bounded: ``cgroup-v1``, ``cgroup-v2`` or ``rlimit``."""
        return f"cgroup-v{self._cgroups.version}" if self._cgroups else "rlimit"

    # -- the Backend protocol ------------------------------------------------

    def preflight(self, kinds: Collection[str] = ()) -> None:
        """Nothing to reach: the machine is here; every kind of job is a command."""

    def put_secrets(self, secrets: Mapping[str, str]) -> None:
        """Jobs submitted from now on get ``secrets`` in their process's environment only
        (handed to the supervisor with the start request; this process's is untouched)."""
        with self._lock:
            self._secrets.update(secrets)

    def submit(self, jobs: Sequence[JobSpec], *, replace: bool = False) -> list[str]:
        """Queue ``jobs``; a name queued, running or recorded as ended is adopted unless
        ``replace``."""
        names = []
        changes = self._environment_changes()
        with self._lock:
            env = {**changes, **self._secrets}
            if self._closing:
                raise RuntimeError("LocalBackend is closed")
            if self._broken:
                raise BackendUnavailable("local backend: its supervisor process ended")
            for spec in jobs:
                names.append(spec.name)
                old = self._active.get(spec.name)
                if not replace and (old is not None or self._adopt(spec.name)):
                    continue
                if old is not None:
                    old.reported = False
                    self._stop(old, Outcome.CANCELLED)
                self._unclaimed.pop(spec.name, None)
                if replace:
                    supervisor.forget_ending(str(self.log_dir), spec.name)
                job = _Job(spec.name, next(self._ids), spec, env, fresh=replace)
                self._active[spec.name] = job
                self._queue.append(job)
            self._dispatch()
        return names

    def wait(self, names: Iterable[str], *, timeout: float | None = None) -> Iterator[JobResult]:
        """Yield each named job's result as it ends; kill and report TIMEOUT after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        mailbox: queue.SimpleQueue[JobResult] = queue.SimpleQueue()
        pending: set[str] = set()
        ready: list[JobResult] = []
        with self._lock:
            for name in names:
                if name in pending:
                    continue
                if name in self._active:
                    self._waiters.setdefault(name, []).append(mailbox)
                    pending.add(name)
                elif (ended := self._unclaimed.pop(name, None) or self._recorded(name)) is not None:
                    ready.append(ended)
                else:
                    ready.append(
                        JobResult(
                            name=name,
                            outcome=Outcome.LOST,
                            message="unknown to this local backend and no ending recorded",
                        )
                    )
        try:
            yield from ready
            while pending:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    result = mailbox.get(timeout=remaining)
                except queue.Empty:
                    deadline = None
                    with self._lock:
                        for name in pending:
                            if (job := self._active.get(name)) is not None:
                                self._stop(job, Outcome.TIMEOUT)
                    continue
                if result.name in pending:
                    pending.discard(result.name)
                    yield result
        finally:
            with self._lock:
                for name in pending:
                    with contextlib.suppress(KeyError, ValueError):
                        self._waiters[name].remove(mailbox)
                        if not self._waiters[name]:
                            del self._waiters[name]

    def logs(self, name: str) -> str:
        """What the job printed (stdout and stderr, every attempt), or ""."""
        try:
            return (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def delete(self, names: Iterable[str]) -> None:
        """Stop the named jobs (reported CANCELLED) and forget their recorded endings."""
        with self._lock:
            for name in names:
                if (job := self._active.get(name)) is not None:
                    self._stop(job, Outcome.CANCELLED, forget=True)
                supervisor.forget_ending(str(self.log_dir), name)

    def active_count(self, prefix: str = "") -> int:
        """Jobs named ``prefix``... that are queued or running (admission control)."""
        with self._lock:
            if not prefix:
                return len(self._active)
            return sum(1 for name in self._active if name.startswith(prefix))

    def close(self) -> None:
        """Cancel everything queued or running, and wait for the supervisor to clean up."""
        with self._lock:
            self._closing = True
            for job in list(self._active.values()):
                self._stop(job, Outcome.CANCELLED)
            with contextlib.suppress(OSError):
                self._requests.close()
        if self._reader is not threading.current_thread():
            self._reader.join()
        self._supervisor.wait()

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the supervisor ----------------------------------------------------------

    def _start_supervisor(self) -> subprocess.Popen[bytes]:
        parent, version = (self._cgroups.path, self._cgroups.version) if self._cgroups else ("-", 0)
        prefix = self._cgroup_prefix = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-"
        try:
            return subprocess.Popen(
                [sys.executable, "-I", supervisor.__file__, str(self.log_dir), str(parent)]
                + [str(version), prefix, str(self.parallelism)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                process_group=0,
                env=self._environment,
            )
        except OSError as exc:
            raise BackendUnavailable(f"local backend: cannot start its supervisor: {exc}") from None

    def _send(self, request: dict[str, Any]) -> None:
        """One request to the supervisor (lock held; it never blocks on its own output)."""
        try:
            self._requests.write(json.dumps(request).encode() + b"\n")
            self._requests.flush()
        except (OSError, ValueError):
            pass  # it is gone: the reader thread reports every running job lost

    def _read_endings(self) -> None:
        for line in self._endings:
            message = json.loads(line)
            if "warning" in message:
                log.warning("local backend: %s", message["warning"])
                continue
            with self._lock:
                job = self._running.pop(message["id"])
                result = JobResult(
                    name=job.name,
                    outcome=Outcome(message["outcome"]),
                    exit_code=message["exit_code"],
                    started_at=_time(message["started_at"]),
                    finished_at=_time(message["finished_at"]),
                    peak_memory_bytes=message["peak"],
                    message=message["message"],
                )
                self._ended(job, result)
                self._dispatch()
        if self._cgroups is not None:  # the supervisor was killed: end what it left
            for path in self._cgroups.path.glob(f"{self._cgroup_prefix}*"):
                MemoryCgroup(path, self._cgroups.version).remove()
        with self._lock:  # the supervisor exited: nothing it ran or would run can end any more
            outcome = Outcome.CANCELLED if self._closing else Outcome.LOST
            self._broken = True
            for job in list(self._active.values()):
                self._ended(
                    job,
                    JobResult(
                        name=job.name,
                        outcome=outcome,
                        finished_at=_now(),
                        message="the local supervisor ended",
                    ),
                )
            self._running.clear()
            self._queue.clear()

    def _dispatch(self) -> None:
        """Hand queued jobs to the supervisor while it has fewer than ``parallelism +
        LOOKAHEAD`` (lock held): it starts each as a slot frees."""
        while self._queue and len(self._running) < self.parallelism + LOOKAHEAD:
            job = self._queue.popleft()
            if job.ended:
                continue
            spec, job.spec, job.running = job.spec, None, True
            assert spec is not None  # a queued job keeps its spec until it is handed over
            self._running[job.id] = job
            self._send(
                {
                    "op": "start",
                    "id": job.id,
                    "name": job.name,
                    "argv": spec.command,
                    "env": {**job.env, **spec.env} if job.env else spec.env,
                    "cwd": spec.workdir,
                    "memory": spec.memory_bytes,
                    "timeout": spec.timeout_seconds,
                    "backoff": spec.backoff_limit,
                    "fresh": job.fresh,
                }
            )

    # -- helpers (callers hold the lock) ----------------------------------------

    def _stop(self, job: _Job, reason: Outcome, *, forget: bool = False) -> None:
        """End ``job`` as ``reason``: report it now if queued, else have it killed
        (``forget``: and never record its ending, even one that beats the kill)."""
        if job.ended:
            return
        if job.running:
            request = {"op": "stop", "id": job.id, "reason": reason.value}
            self._send({**request, "forget": job.name} if forget else request)
        else:
            self._ended(job, JobResult(name=job.name, outcome=reason, finished_at=_now()))

    def _ended(self, job: _Job, result: JobResult) -> None:
        """Record ``job``'s ending and hand it to whoever waits for it."""
        job.ended = True
        if self._active.get(job.name) is job:
            del self._active[job.name]
        if not job.reported:
            return
        mailboxes = self._waiters.pop(job.name, None)
        if mailboxes:
            for mailbox in mailboxes:
                mailbox.put(result)
        else:
            self._unclaimed[job.name] = result

    def _adopt(self, name: str) -> bool:
        """Whether ``name`` already ended here or in an earlier backend (its record)."""
        if name in self._unclaimed:
            return True
        result = self._recorded(name)
        if result is not None:
            self._unclaimed[name] = result
        return result is not None

    def _recorded(self, name: str) -> JobResult | None:
        ending = supervisor.recorded_ending(str(self.log_dir), name)
        if ending is None:
            return None
        return JobResult(
            name=name,
            outcome=Outcome(ending["outcome"]),
            exit_code=ending.get("exit_code"),
            started_at=_time(ending.get("started_at")),
            finished_at=_time(ending.get("finished_at")),
            peak_memory_bytes=ending.get("peak"),
            message=ending.get("message"),
        )

    def _environment_changes(self) -> dict[str, str | None]:
        """What changed in this process's environment since the supervisor started."""
        if os.environ == self._environment:
            return {}
        changes: dict[str, str | None] = {k: None for k in self._environment if k not in os.environ}
        changes.update((k, v) for k, v in os.environ.items() if self._environment.get(k) != v)
        return changes

    @staticmethod
    def _cgroup_parent(wanted: bool | None) -> CgroupParent | None:
        if wanted is None:
            wanted = {"off": False, "on": True}.get(sluice_settings().local_cgroups or "")
        if wanted is False:
            log.warning(
                "local backend: memory cgroups switched off; job memory is bounded by "
                "RLIMIT_AS (address space, not resident memory) and OOM is only recognised "
                "from the job's output"
            )
            return None
        try:
            parent = CgroupParent.detect()
        except (CgroupUnavailable, OSError) as exc:
            if wanted:
                raise BackendUnavailable(f"local backend: no memory cgroup: {exc}") from None
            log.warning(
                f"local backend: no memory cgroup ({exc}); job memory is bounded by RLIMIT_AS "
                "(address space, not resident memory) and OOM is only recognised from the "
                "job's output"
            )
            return None
        parent.sweep_stale()
        return parent
