"""The local backend's supervisor: the parent of every local job, and its recorder.

``LocalBackend`` starts this file once (``python -I supervisor.py <log dir>
<cgroup parent or -> <cgroup version> <cgroup prefix> <parallelism>``) and talks to it
over its stdin and stdout, one JSON object per line:

- in: ``{"op": "start", "id", "name", "argv", "env", "cwd", "memory", "timeout",
  "backoff"}`` and ``{"op": "stop", "id", "reason"}``;
- out: ``{"id", "outcome", "exit_code", "peak", "message", "started_at",
  "finished_at"}`` once per started job, and ``{"warning": text}``.

Started jobs wait here, first in first out, until one of ``parallelism`` slots is free:
the next job starts the moment one ends, without a round trip to the orchestrator. A
stop for a job still waiting ends it at once (never started, nothing recorded).

It is single-threaded and standard library only. Each attempt is one
``posix_spawn`` (vfork + exec: nothing of this process is copied) in its own
process group, stdout and stderr on ``<name>.log``; for the instant of the
spawn the supervisor itself stands in the job's memory cgroup and working
directory, so the child starts inside them before its first instruction. The
``RLIMIT_AS`` fallback adds one ``sh -c 'ulimit -v'`` exec.

A job that ends on its own (or at its own deadline) has its ending recorded
atomically with its log (``record_ending``) *before* the orchestrator is told:
the record outlives the orchestrator, so a resumed orchestrator adopts the
ending instead of running the job again. Jobs the orchestrator stops (cancel,
wait timeout) get no record.

When stdin closes (the orchestrator closed the backend, exited or was killed),
every job is SIGKILLed with its process group and cgroup; one that had already
ended on its own is still recorded. Then the cgroups are removed and the
supervisor exits. If the supervisor itself is killed, the orchestrator (or,
if it is gone too, the next backend to start) kills and removes its cgroups.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import select
import shutil
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENDING_ATTRIBUTE = "user.sluice.ending"
STATUS_SUFFIX = ".status"
# RLIMIT_AS fallback: the limit (KiB) is $0, the command follows; the one extra exec.
_RLIMIT_WRAPPER = 'ulimit -v "$0" || exit 125; exec "$@"'
# Signals a process does not send itself: death by one of these without an OOM kill is "lost".
_EXTERNAL_SIGNALS = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT}
# How an allocation failure under RLIMIT_AS usually shows (Python, C++, C/glibc).
_ALLOCATION_FAILURE = re.compile(
    rb"MemoryError|std::bad_alloc|Cannot allocate memory|(?i:out of memory)"
)
_LOG_TAIL_BYTES = 8192
_STOP_MESSAGES = {"timeout": "deadline passed", "cancelled": "deleted"}


# -- memory cgroups (also used by sluice.backends.cgroups) -----------------------


@dataclass(frozen=True)
class MemoryCgroup:
    """One job attempt's memory cgroup."""

    path: Path
    version: int

    @classmethod
    def create(cls, path: Path, version: int, memory_bytes: int | None) -> MemoryCgroup:
        """Make the cgroup at ``path`` with a hard limit of ``memory_bytes`` (None: none)."""
        path.mkdir()
        group = cls(path, version)
        try:
            if memory_bytes is not None:
                group._limit(memory_bytes)
        except OSError:
            group.remove()
            raise
        return group

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer killed in this cgroup."""
        source = "memory.oom_control" if self.version == 1 else "memory.events"
        values: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in (self.path / source).read_text().splitlines():
                key, _, value = line.partition(" ")
                with contextlib.suppress(ValueError):
                    values[key] = int(value)
        return values.get("oom_kill", 0)

    def peak_bytes(self) -> int | None:
        """The highest memory usage seen, where the kernel records it."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.path / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """SIGKILL every process in the cgroup (v2 ``cgroup.kill`` where present)."""
        if (self.path / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.path / "cgroup.kill").write_text("1")
            return
        for _ in range(10):
            try:
                pids = [int(pid) for pid in self.procs_file.read_text().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self, attempts: int = 50) -> bool:
        """Kill what is left and remove the cgroup; False if it stays busy."""
        for attempt in range(attempts):
            self.kill()
            try:
                self.path.rmdir()
                return True
            except FileNotFoundError:
                return True
            except OSError:
                # Killed processes leave the cgroup once the kernel has torn them down.
                time.sleep(0.001 * (attempt + 1))
        return False

    def _limit(self, memory_bytes: int) -> None:
        if self.version == 1:
            (self.path / "memory.limit_in_bytes").write_text(str(memory_bytes))
            # Memory+swap at the same figure: the job cannot dodge the limit by swapping.
            if (self.path / "memory.memsw.limit_in_bytes").exists():
                (self.path / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        else:
            (self.path / "memory.max").write_text(str(memory_bytes))
            if (self.path / "memory.swap.max").exists():
                (self.path / "memory.swap.max").write_text("0")
            if (self.path / "memory.oom.group").exists():
                # One OOM kill ends the whole job, as in a Kubernetes container on cgroup v2.
                (self.path / "memory.oom.group").write_text("1")


# -- how a run ended ---------------------------------------------------------------


def classify(
    status: int, stop: str | None, oom_kills: int, cgroup: bool
) -> tuple[str, int, str | None]:
    """(outcome, exit code, message) of one ended process."""
    code = os.waitstatus_to_exitcode(status)
    signalled = code < 0
    exit_code = 128 - code if signalled else code
    if code == 0:
        return "succeeded", 0, None
    if stop is not None:
        return stop, exit_code, _STOP_MESSAGES.get(stop, "the orchestrator went away")
    if oom_kills:
        if cgroup:
            message = f"OOM-killed by the kernel in its memory cgroup ({oom_kills} kill(s))"
            return "oom", exit_code, message
        return "oom", exit_code, "allocation failed under RLIMIT_AS (read from the job's output)"
    if signalled and -code in _EXTERNAL_SIGNALS:
        return "lost", exit_code, f"killed by {signal.Signals(-code).name} from outside Sluice"
    message = f"died of {signal.Signals(-code).name}" if signalled else f"exit code {code}"
    return "failed", exit_code, message


def allocation_failed(log_path: str, start: int) -> bool:
    """Whether this attempt's output ends with an allocation failure (RLIMIT_AS mode only)."""
    try:
        with open(log_path, "rb") as output:
            size = output.seek(0, os.SEEK_END)
            output.seek(max(start, size - _LOG_TAIL_BYTES))
            return bool(_ALLOCATION_FAILURE.search(output.read()))
    except OSError:
        return False


def _join(procs_file: Path) -> None:
    """Move this process into the cgroup whose ``cgroup.procs`` is ``procs_file``."""
    fd = os.open(procs_file, os.O_WRONLY)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)


def record_ending(log_dir: str, name: str, ending: dict[str, Any]) -> None:
    """Record how job ``name`` ended, atomically: readers see all of it or nothing.

    As the ``user.sluice.ending`` extended attribute of ``<name>.log`` (one
    ``setxattr``, no new file), or where the filesystem has no user attributes as
    ``<name>.status``, written to a temporary file and renamed into place.
    """
    data = json.dumps(ending).encode()
    try:
        os.setxattr(f"{log_dir}/{name}.log", ENDING_ATTRIBUTE, data)
        return
    except OSError:
        pass
    temporary = f"{log_dir}/.{name}{STATUS_SUFFIX}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temporary, f"{log_dir}/{name}{STATUS_SUFFIX}")


def recorded_ending(log_dir: str, name: str) -> dict[str, Any] | None:
    """How job ``name`` ended as recorded by ``record_ending``, or None."""
    try:
        data = os.getxattr(f"{log_dir}/{name}.log", ENDING_ATTRIBUTE)
    except OSError:
        try:
            with open(f"{log_dir}/{name}{STATUS_SUFFIX}", "rb") as status:
                data = status.read()
        except OSError:
            return None
    try:
        ending = json.loads(data)
    except ValueError:
        return None
    return ending if isinstance(ending, dict) and "outcome" in ending else None


def forget_ending(log_dir: str, name: str) -> None:
    """Remove the recorded ending of job ``name`` (its log stays)."""
    with contextlib.suppress(OSError):
        os.removexattr(f"{log_dir}/{name}.log", ENDING_ATTRIBUTE)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{log_dir}/{name}{STATUS_SUFFIX}")


# -- the supervisor ----------------------------------------------------------------


class _Job:
    """One started job: its request and its current attempt."""

    def __init__(self, request: dict[str, Any], log_dir: str, base_env: dict[str, str]) -> None:
        self.id: int = request["id"]
        self.name: str = request["name"]
        self.argv: list[str] = request["argv"]
        self.env = base_env
        if request["env"]:
            self.env = dict(base_env)
            for key, value in request["env"].items():  # None: unset since the supervisor started
                if value is None:
                    self.env.pop(key, None)
                else:
                    self.env[key] = value
        self.cwd: str | None = request["cwd"]
        self.memory: int | None = request["memory"]
        self.timeout: float | None = request["timeout"]
        self.deadline: float | None = None  # set when it starts
        self.backoff: int = request["backoff"]
        self.log = f"{log_dir}/{self.name}.log"
        self.attempt = 0
        self.stop: str | None = None
        self.record = True  # whether its ending is recorded for a later backend
        self.started_at: float | None = None
        self.peak: int | None = None
        self.pid: int | None = None
        self.pidfd = -1
        self.log_start = 0
        self.cgroup: MemoryCgroup | None = None


class Supervisor:
    """Forks, watches, classifies and records local jobs (see the module docstring)."""

    def __init__(
        self,
        log_dir: Path,
        cgroup_parent: Path | None,
        version: int,
        prefix: str,
        parallelism: int = 1,
    ) -> None:
        self.log_dir = str(log_dir)
        self.parallelism = parallelism
        self.waiting: deque[_Job] = deque()  # started by the orchestrator, not yet run
        self.slots: set[int] = set()  # ids of the jobs running (retries in place included)
        self.cgroup_parent = cgroup_parent
        self.version = version
        self.prefix = prefix
        self.sequence = itertools.count(1)
        self.jobs: dict[int, _Job] = {}
        self.current: dict[str, int] = {}  # job name -> id of its latest start
        self.by_fd: dict[int, _Job] = {}
        self.poller = select.poll()
        self.output = bytearray()
        self.writing = False
        self.home_dir = os.getcwd()
        self.base_env = dict(os.environ)
        self.home_cgroup = -1
        if cgroup_parent is not None:
            self.home_cgroup = os.open(cgroup_parent / "cgroup.procs", os.O_WRONLY)
        self.executables: dict[tuple[str, str], str] = {}

    def serve(self) -> None:
        """Run until stdin closes, then end every job and clean up."""
        os.set_blocking(1, False)
        self.poller.register(0, select.POLLIN)
        pending = b""
        while True:
            for fd, _ in self.poller.poll(self._poll_ms()):
                if fd == 0:
                    data = os.read(0, 1 << 16)
                    if not data:
                        return self._shutdown()
                    *lines, pending = (pending + data).split(b"\n")
                    for line in lines:
                        self._handle(json.loads(line))
                elif fd == 1:
                    self._flush()
                elif fd in self.by_fd:
                    self._ended(self.by_fd[fd])
            self._enforce_deadlines()
            self._start_waiting()

    # -- requests ----------------------------------------------------------------

    def _handle(self, request: dict[str, Any]) -> None:
        if request["op"] == "start":
            job = _Job(request, self.log_dir, self.base_env)
            self.jobs[job.id] = job
            self.current[job.name] = job.id  # a replaced run of the name records nothing
            if request.get("fresh"):
                forget_ending(self.log_dir, job.name)
            self.waiting.append(job)
            return
        number, name = request["id"], request.get("forget")
        if name and self.current.get(name, number) == number:
            self.current.pop(name, None)  # deleted: no ending of this run is recorded, even now
            forget_ending(self.log_dir, name)
        if (target := self.jobs.get(number)) is not None and target.stop is None:
            target.stop, target.record = request["reason"], False
            if target.id in self.slots:
                self._kill(target)
            else:  # still waiting: it never runs
                self._finish(target, target.stop, None, None)

    def _start_waiting(self) -> None:
        """Start waiting jobs while slots are free (one stopped meanwhile is skipped)."""
        while self.waiting and len(self.slots) < self.parallelism:
            job = self.waiting.popleft()
            if self.jobs.get(job.id) is not job:
                continue
            self.slots.add(job.id)
            if job.timeout is not None:
                job.deadline = time.monotonic() + job.timeout
            self._spawn(job)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for job in [self.jobs[number] for number in self.slots]:
            if job.stop is None and job.deadline is not None and now >= job.deadline:
                job.stop = "timeout"  # the job's own deadline: recorded like any ending
                self._kill(job)

    def _poll_ms(self) -> int | None:
        running = (self.jobs[number] for number in self.slots)
        deadlines = [j.deadline for j in running if j.stop is None and j.deadline]
        if not deadlines:
            return None
        return max(0, int((min(deadlines) - time.monotonic()) * 1e3) + 1)

    # -- one attempt -------------------------------------------------------------

    def _spawn(self, job: _Job) -> None:
        job.attempt += 1
        job.cgroup = None
        if self.cgroup_parent is not None:
            path = self.cgroup_parent / f"{self.prefix}{next(self.sequence)}-{job.name}"
            try:
                job.cgroup = MemoryCgroup.create(path, self.version, job.memory)
            except OSError as exc:
                return self._finish(job, "failed", None, f"cannot make its memory cgroup: {exc}")
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if job.attempt > 1 else os.O_TRUNC)
        try:
            log_fd = os.open(job.log, flags, 0o600)
        except OSError as exc:
            return self._finish(job, "failed", None, f"could not open its log: {exc}")
        try:
            if job.attempt > 1:
                os.write(log_fd, f"\n--- sluice: attempt {job.attempt} ---\n".encode())
            else:  # a truncated log keeps its attributes: no earlier ending may stay on it
                with contextlib.suppress(OSError):
                    os.removexattr(log_fd, ENDING_ATTRIBUTE)
            job.log_start = os.fstat(log_fd).st_size
            started_at = time.time()
            pid = self._start_process(job, log_fd)
        except OSError as exc:
            return self._finish(job, "failed", None, f"could not start: {exc}")
        finally:
            os.close(log_fd)
        job.pid = pid
        job.started_at = job.started_at or started_at
        job.pidfd = os.pidfd_open(pid)
        self.by_fd[job.pidfd] = job
        self.poller.register(job.pidfd, select.POLLIN)
        if job.stop is not None:
            self._kill(job)

    def _start_process(self, job: _Job, log_fd: int) -> int:
        """posix_spawn (vfork + exec: one exec, no copy of this process) the job.

        The child inherits its cgroup and working directory from this single-threaded
        process, so for the instant of the spawn the supervisor itself stands in the
        job's cgroup and directory: the job is inside before its first instruction.
        """
        argv = job.argv
        if job.cgroup is None and job.memory is not None:
            argv = ["/bin/sh", "-c", _RLIMIT_WRAPPER, str(max(1, job.memory // 1024)), *argv]
        executable = self._resolve(argv[0], job.env.get("PATH", os.defpath))
        if job.cgroup is not None:
            _join(job.cgroup.procs_file)
        try:
            if job.cwd is not None:
                try:
                    os.chdir(job.cwd)
                except OSError as exc:
                    why = f"working directory {job.cwd}: {exc.strerror}"
                    raise OSError(exc.errno, why) from None
            return os.posix_spawn(
                executable,
                argv,
                job.env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                ],
                setpgroup=0,
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
            )
        finally:
            if job.cwd is not None:
                os.chdir(self.home_dir)
            if job.cgroup is not None:
                os.write(self.home_cgroup, b"0")

    def _resolve(self, program: str, path: str) -> str:
        """``program`` looked up in ``path`` as execvp would (found ones are remembered)."""
        if "/" in program:
            return program
        key = (program, path)
        if key not in self.executables:
            found = shutil.which(program, path=path)
            if found is None:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
            self.executables[key] = found
        return self.executables[key]

    def _kill(self, job: _Job) -> None:
        if job.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, signal.SIGKILL)
        if job.cgroup is not None:
            job.cgroup.kill()

    def _ended(self, job: _Job) -> None:
        """The attempt's main process exited: reap, classify, retry in place or finish."""
        assert job.pid is not None  # it has a pidfd, so it was started
        self.poller.unregister(job.pidfd)
        del self.by_fd[job.pidfd]
        os.close(job.pidfd)
        # Until reaped the job is a zombie holding its pid, so its group is still its own:
        # end whatever it left running there, as a container's end does (and, below, in
        # its cgroup, which is killed as it is removed).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, signal.SIGKILL)
        _, status, usage = os.wait4(job.pid, 0)
        finished_at = time.time()
        job.pid = None
        cgroup, job.cgroup = job.cgroup, None
        if cgroup is not None:
            oom_kills, peak = cgroup.oom_kills(), cgroup.peak_bytes()
            if not cgroup.remove():
                busy = f"memory cgroup {cgroup.path} still busy; the next start will remove it"
                self._send({"warning": busy})
        else:
            peak = usage.ru_maxrss * 1024
            oom_kills = int(status != 0 and allocation_failed(job.log, job.log_start))
        if peak is not None:
            job.peak = max(job.peak or 0, peak)
        stop = job.stop
        if stop == "lost" and (oom_kills or status != signal.SIGKILL):
            stop = None  # it ended on its own before the supervisor's last kill landed
        outcome, exit_code, message = classify(status, stop, oom_kills, cgroup is not None)
        if outcome == "failed" and job.stop is None and job.attempt <= job.backoff:
            return self._spawn(job)
        if job.attempt > 1:
            message = f"attempt {job.attempt}: {message}"
        self._finish(job, outcome, exit_code, message, finished_at)

    def _finish(
        self,
        job: _Job,
        outcome: str,
        exit_code: int | None,
        message: str | None,
        finished_at: float | None = None,
    ) -> None:
        ending = {
            "id": job.id,
            "outcome": outcome,
            "exit_code": exit_code,
            "peak": job.peak,
            "message": message,
            "started_at": job.started_at,
            "finished_at": finished_at or time.time(),
        }
        self.slots.discard(job.id)
        latest = self.current.get(job.name) == job.id
        if latest:
            del self.current[job.name]
        # The orchestrator's own stops are not endings of the job's making: nothing to adopt.
        if latest and (job.record or outcome != job.stop):
            record_ending(self.log_dir, job.name, ending)
        del self.jobs[job.id]
        self._send(ending)

    # -- answers -----------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        self.output += json.dumps(message).encode() + b"\n"
        self._flush()

    def _flush(self) -> None:
        """Write what the pipe takes now; never block (the orchestrator may be writing)."""
        try:
            while self.output:
                del self.output[: os.write(1, self.output)]
        except BlockingIOError:
            pass
        except OSError:
            self.output.clear()  # the orchestrator is gone
        if self.output and not self.writing:
            self.poller.register(1, select.POLLOUT)
        elif not self.output and self.writing:
            self.poller.unregister(1)
        self.writing = bool(self.output)

    def _shutdown(self) -> None:
        for job in list(self.jobs.values()):
            if job.stop is None:
                job.stop, job.record = "lost", False
            self._kill(job)
        for job in list(self.jobs.values()):
            if job.pid is not None:
                self._ended(job)
        os.set_blocking(1, True)
        with contextlib.suppress(OSError):
            while self.output:
                del self.output[: os.write(1, self.output)]
        if self.cgroup_parent is not None:
            for path in self.cgroup_parent.glob(f"{self.prefix}*"):
                MemoryCgroup(path, self.version).remove()


def main(log_dir: str, cgroup_parent: str, version: str, prefix: str, parallelism: str) -> None:
    parent = None if cgroup_parent == "-" else Path(cgroup_parent)
    Supervisor(Path(log_dir), parent, int(version), prefix, int(parallelism)).serve()


if __name__ == "__main__":
    main(*sys.argv[1:6])
