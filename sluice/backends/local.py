"""The local backend: every job is a local process under a real memory limit.

Each attempt runs in its own memory cgroup (see ``sluice.backends.cgroups``):
the kernel OOM-kills an overrun exactly as in a pod, and the outcome is read
from the cgroup's OOM-kill counter and the exit status. Where no cgroup can be
made, ``RLIMIT_AS`` bounds the job instead (see ``docs/local-backend.md``).

Processes are started by a fixed pool of ``parallelism`` worker threads (the
parallelism bound), each through a tiny wrapper::

    setpriv --pdeathsig KILL -- /bin/sh -c <_WRAPPER> sluice-job \
        <orchestrator pid> <cgroup.procs | -> <RLIMIT_AS KiB | -> <command...>

so the job is inside its cgroup (or under its rlimit) before it execs, and
dies with its worker thread even if the orchestrator is SIGKILLed (the wrapper
exits if the orchestrator died before the death signal was armed). A watchdog
child (``sluice.backends.watchdog``) kills what is left, grandchildren
included, when the orchestrator's end of its pipe closes. Workers watch their
process through a pidfd with the job's deadline as poll timeout: no per-job
polling.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sluice.backends import watchdog
from sluice.backends.cgroups import PREFIX, CgroupParent, CgroupUnavailable, MemoryCgroup
from sluice.errors import BackendUnavailable
from sluice.jobs import JobResult, JobSpec, Outcome
from sluice.settings import sluice_home, sluice_settings

log = logging.getLogger(__name__)

WRAPPER_FAILED = 125
_WRAPPER = (
    '[ "$PPID" = "$1" ] || exit 125; '
    '[ "$2" = - ] || echo $$ > "$2" || exit 125; '
    '[ "$3" = - ] || ulimit -v "$3" || exit 125; '
    'shift 3; exec "$@"'
)
# Signals a process does not send itself: death by one of these without an OOM kill is "lost".
_EXTERNAL_SIGNALS = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT}
# How an allocation failure under RLIMIT_AS usually shows (Python, C++, C/glibc).
_ALLOCATION_FAILURE = re.compile(
    rb"MemoryError|std::bad_alloc|Cannot allocate memory|(?i:out of memory)"
)
_LOG_TAIL_BYTES = 8192
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class _Job:
    """One submitted job's state; guarded by the backend lock."""

    spec: JobSpec
    running: bool = False
    pid: int | None = None
    cgroup: MemoryCgroup | None = None
    stop: Outcome | None = None  # TIMEOUT or CANCELLED once Sluice decided to end it
    deleted: bool = False
    result: JobResult | None = None


@dataclass
class _Attempt:
    """How one process run ended."""

    outcome: Outcome
    exit_code: int | None = None
    peak_memory_bytes: int | None = None
    message: str | None = None
    started_at: datetime = field(default_factory=_now)


class LocalBackend:
    """Runs jobs as local processes, at most ``parallelism`` at a time.

    Args:
        parallelism: How many jobs run at once (more queue inside the backend).
        log_dir: Where ``<job name>.log`` files go; default ``$SLUICE_HOME/logs/local``.
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
        self._setpriv = shutil.which("setpriv")
        if not self._setpriv:
            _warn_once(
                "setpriv not found: local jobs will not die with the orchestrator if it is "
                "killed (install util-linux)"
            )
        self._cgroup_prefix = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-"
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._watchdog = self._start_watchdog()
        self._jobs: dict[str, _Job] = {}
        self._active: dict[str, _Job] = {}  # queued or running
        self._queue: deque[_Job] = deque()
        self._finished: list[str] = []
        self._closing = False
        self._workers = [
            threading.Thread(target=self._work_loop, name=f"sluice-local-{i}", daemon=True)
            for i in range(self.parallelism)
        ]
        for worker in self._workers:
            worker.start()

    @property
    def memory_limits(self) -> str:
        """How job memory is bounded: ``cgroup-v1``, ``cgroup-v2`` or ``rlimit``."""
        return f"cgroup-v{self._cgroups.version}" if self._cgroups else "rlimit"

    # -- the Backend protocol ------------------------------------------------

    def preflight(self) -> None:
        """Nothing to reach: the machine is here."""

    def submit(self, jobs: Sequence[JobSpec], *, replace: bool = False) -> list[str]:
        """Queue ``jobs``; a name already known is adopted unless ``replace``."""
        names = []
        with self._lock:
            if self._closing:
                raise RuntimeError("LocalBackend is closed")
            for spec in jobs:
                names.append(spec.name)
                old = self._jobs.get(spec.name)
                if old is not None and not old.deleted and not replace:
                    continue
                job = _Job(spec)
                self._jobs[spec.name] = self._active[spec.name] = job
                if old is not None:
                    self._stop(old, Outcome.CANCELLED)
                self._queue.append(job)
                self._work.notify()
        return names

    def wait(self, names: Iterable[str], *, timeout: float | None = None) -> Iterator[JobResult]:
        """Yield each named job's result as it ends; kill and report TIMEOUT after ``timeout``."""
        pending = dict.fromkeys(names)
        deadline = None if timeout is None else time.monotonic() + timeout
        ready: list[JobResult] = []
        with self._lock:
            cursor = len(self._finished)
            for name in list(pending):
                job = self._jobs.get(name)
                if job is None:
                    ready.append(
                        JobResult(
                            name=name,
                            outcome=Outcome.LOST,
                            message="unknown to this local backend (started by another process?)",
                        )
                    )
                elif job.result is None:
                    continue
                else:
                    ready.append(job.result)
                del pending[name]
        yield from ready
        while pending:
            with self._lock:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    remaining = deadline = None
                    for name in pending:
                        self._stop(self._jobs[name], Outcome.TIMEOUT)
                if cursor == len(self._finished):
                    self._done.wait(remaining)
                ready = []
                for name in self._finished[cursor:]:
                    job = self._jobs.get(name)
                    if name in pending and job is not None and job.result is not None:
                        ready.append(job.result)
                        del pending[name]
                cursor = len(self._finished)
            yield from ready

    def logs(self, name: str) -> str:
        """What the job printed (stdout and stderr, every attempt), or ""."""
        try:
            return self._log_path(name).read_text(errors="replace")
        except OSError:
            return ""

    def delete(self, names: Iterable[str]) -> None:
        """Stop the named jobs (reported CANCELLED); a later submit starts them afresh."""
        with self._lock:
            for name in names:
                job = self._jobs.get(name)
                if job is not None:
                    job.deleted = True
                    self._stop(job, Outcome.CANCELLED)

    def active_count(self, prefix: str = "") -> int:
        """Jobs named ``prefix``... that are queued or running (admission control)."""
        with self._lock:
            if not prefix:
                return len(self._active)
            return sum(1 for name in self._active if name.startswith(prefix))

    def close(self) -> None:
        """Cancel everything queued or running, and wait for the workers to clean up."""
        with self._lock:
            self._closing = True
            for job in list(self._active.values()):
                self._stop(job, Outcome.CANCELLED)
            self._work.notify_all()
        for worker in self._workers:
            if worker is not threading.current_thread():
                worker.join()
        if self._watchdog is not None:
            self._watchdog.stdin.close()
            self._watchdog.wait()
            self._watchdog = None

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- workers ---------------------------------------------------------------

    def _work_loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._work.wait()
                if not self._queue:
                    return
                job = self._queue.popleft()
                if job.result is not None:
                    continue
                job.running = True
            try:
                result = self._run(job)
            except Exception as exc:  # a bug here must not hang every waiter
                log.exception("local job %s: unexpected error", job.spec.name)
                result = JobResult(name=job.spec.name, outcome=Outcome.LOST, message=repr(exc))
            with self._lock:
                self._publish(job, result)

    def _run(self, job: _Job) -> JobResult:
        """Run the job's attempts: a FAILED one is re-run up to ``backoff_limit`` times."""
        spec = job.spec
        deadline = None if spec.timeout_seconds is None else time.monotonic() + spec.timeout_seconds
        started_at = None
        peak = None
        for number in range(1, spec.backoff_limit + 2):
            attempt = self._attempt(job, number, deadline)
            started_at = started_at or attempt.started_at
            if attempt.peak_memory_bytes is not None:
                peak = max(peak or 0, attempt.peak_memory_bytes)
            if attempt.outcome is not Outcome.FAILED or job.stop is not None:
                break
        return JobResult(
            name=spec.name,
            outcome=attempt.outcome,
            exit_code=attempt.exit_code,
            started_at=started_at,
            finished_at=_now(),
            peak_memory_bytes=peak,
            message=attempt.message if number == 1 else f"attempt {number}: {attempt.message}",
        )

    def _attempt(self, job: _Job, number: int, deadline: float | None) -> _Attempt:
        spec = job.spec
        with self._lock:
            if job.stop is not None:
                return _Attempt(job.stop, message="stopped before it started")
        cgroup = None
        if self._cgroups is not None:
            name = f"{self._cgroup_prefix}{next(self._sequence)}-{spec.name}"
            cgroup = self._cgroups.create(name, spec.memory_bytes)
        try:
            return self._run_process(job, number, deadline, cgroup)
        finally:
            if cgroup is not None:
                with self._lock:
                    job.cgroup = None
                cgroup.remove()

    def _run_process(
        self, job: _Job, number: int, deadline: float | None, cgroup: MemoryCgroup | None
    ) -> _Attempt:
        spec = job.spec
        log_path = self._log_path(spec.name)
        attempt = _Attempt(Outcome.FAILED)
        with open(log_path, "ab" if number > 1 else "wb") as out:
            if number > 1:
                out.write(f"\n--- sluice: attempt {number} ---\n".encode())
                out.flush()
            log_start = out.tell()
            try:
                proc = subprocess.Popen(
                    self._argv(spec, cgroup),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **spec.env},
                    cwd=spec.workdir,
                    process_group=0,
                )
            except OSError as exc:
                attempt.message = f"could not start: {exc}"
                return attempt
        with self._lock:
            job.pid, job.cgroup = proc.pid, cgroup
            self._tell_watchdog(f"+{proc.pid}")
            if job.stop is not None:
                self._kill(job)
        status, rusage = self._reap(job, proc, deadline)
        with self._lock:
            stop = job.stop
        if cgroup is not None:
            oom_kills, attempt.peak_memory_bytes = cgroup.oom_kills(), cgroup.peak_bytes()
        else:
            attempt.peak_memory_bytes = rusage.ru_maxrss * 1024
            oom_kills = int(status != 0 and _allocation_failed(log_path, log_start))
        self._classify(attempt, status, stop, oom_kills, cgroup is not None)
        return attempt

    def _reap(
        self, job: _Job, proc: subprocess.Popen[bytes], deadline: float | None
    ) -> tuple[int, os.struct_rusage]:
        """Wait for the process to end, killing it at ``deadline``."""
        pidfd = os.pidfd_open(proc.pid)
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            while True:
                wait_ms = None if deadline is None else max(0, (deadline - time.monotonic()) * 1e3)
                if poller.poll(wait_ms):
                    break
                with self._lock:
                    self._stop(job, Outcome.TIMEOUT)
                deadline = None
        finally:
            os.close(pidfd)
        with self._lock:
            # Until reaped the job is a zombie holding its pid, so its group is still its own:
            # end whatever it left running there, as a container's end does.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            self._tell_watchdog(f"-{proc.pid}")
            job.pid = None
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return status, rusage

    @staticmethod
    def _classify(
        attempt: _Attempt, status: int, stop: Outcome | None, oom_kills: int, cgroup: bool
    ) -> None:
        code = os.waitstatus_to_exitcode(status)
        signalled = code < 0
        attempt.exit_code = 128 - code if signalled else code
        if code == 0:
            attempt.outcome, attempt.message = Outcome.SUCCEEDED, None
        elif stop is not None:
            attempt.outcome = stop
            attempt.message = "deadline passed" if stop is Outcome.TIMEOUT else "deleted"
        elif oom_kills:
            attempt.outcome = Outcome.OOM
            attempt.message = (
                f"OOM-killed by the kernel in its memory cgroup ({oom_kills} kill(s))"
                if cgroup
                else "allocation failed under RLIMIT_AS (read from the job's output)"
            )
        elif signalled and -code in _EXTERNAL_SIGNALS:
            attempt.outcome = Outcome.LOST
            attempt.message = f"killed by {signal.Signals(-code).name} from outside Sluice"
        else:
            attempt.outcome = Outcome.FAILED
            attempt.message = (
                f"died of {signal.Signals(-code).name}" if signalled else f"exit code {code}"
            )
            if not signalled and code == WRAPPER_FAILED:
                attempt.message += " (or the wrapper could not apply the memory limit)"

    # -- helpers (callers hold the lock where noted) --------------------------

    def _stop(self, job: _Job, reason: Outcome) -> None:
        """End ``job`` as ``reason`` (lock held): report it now if queued, else kill it."""
        if job.result is not None:
            return
        if job.stop is None:
            job.stop = reason
        if not job.running:
            self._publish(job, JobResult(name=job.spec.name, outcome=reason, finished_at=_now()))
        else:
            self._kill(job)

    def _kill(self, job: _Job) -> None:
        """SIGKILL the job's process group and cgroup (lock held)."""
        if job.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, signal.SIGKILL)
        if job.cgroup is not None:
            job.cgroup.kill()

    def _publish(self, job: _Job, result: JobResult) -> None:
        """Record ``job``'s result and wake waiters (lock held)."""
        if job.result is not None:
            return
        job.result = result
        if self._active.get(job.spec.name) is job:
            del self._active[job.spec.name]
        if self._jobs.get(job.spec.name) is job:
            self._finished.append(job.spec.name)
            self._done.notify_all()

    def _argv(self, spec: JobSpec, cgroup: MemoryCgroup | None) -> list[str]:
        argv = [self._setpriv, "--pdeathsig", "KILL", "--"] if self._setpriv else []
        procs = str(cgroup.procs_file) if cgroup is not None else "-"
        rlimit = "-"
        if cgroup is None and spec.memory_bytes is not None:
            rlimit = str(max(1, spec.memory_bytes // 1024))
        wrapper = ["/bin/sh", "-c", _WRAPPER, "sluice-job", str(os.getpid()), procs, rlimit]
        return [*argv, *wrapper, *spec.command]

    def _start_watchdog(self) -> subprocess.Popen[str] | None:
        parent = str(self._cgroups.path) if self._cgroups is not None else "-"
        try:
            return subprocess.Popen(
                [sys.executable, "-I", watchdog.__file__, parent, self._cgroup_prefix],
                stdin=subprocess.PIPE,
                text=True,
                process_group=0,
            )
        except OSError as exc:
            _warn_once(
                f"local backend: no watchdog ({exc}); a killed orchestrator may leave "
                "its jobs' own child processes running"
            )
            return None

    def _tell_watchdog(self, line: str) -> None:
        """Send the watchdog ``+pgid`` / ``-pgid`` (lock held)."""
        if self._watchdog is None:
            return
        try:
            self._watchdog.stdin.write(line + "\n")
            self._watchdog.stdin.flush()
        except OSError as exc:
            _warn_once(f"local backend: watchdog gone ({exc}); continuing without it")
            self._watchdog = None

    def _log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    @staticmethod
    def _cgroup_parent(wanted: bool | None) -> CgroupParent | None:
        if wanted is None:
            wanted = {"off": False, "on": True}.get(sluice_settings().local_cgroups or "")
        if wanted is False:
            _warn_once(
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
            _warn_once(
                f"local backend: no memory cgroup ({exc}); job memory is bounded by RLIMIT_AS "
                "(address space, not resident memory) and OOM is only recognised from the "
                "job's output"
            )
            return None
        parent.sweep_stale()
        return parent


def _allocation_failed(log_path: Path, start: int) -> bool:
    """Whether this attempt's output ends with an allocation failure (RLIMIT_AS mode only)."""
    try:
        with open(log_path, "rb") as output:
            size = output.seek(0, os.SEEK_END)
            output.seek(max(start, size - _LOG_TAIL_BYTES))
            return bool(_ALLOCATION_FAILURE.search(output.read()))
    except OSError:
        return False
