"""The double's Nomad "client": runs a task's command as a local process under a memory limit.

A real Nomad client runs ``raw_exec``/``exec``/``docker`` tasks under a memory
cgroup sized from ``Resources.MemoryMB``; this runner does the same with Sluice's
memory cgroups (``sluice.backends.cgroups``, v1 or v2): the kernel OOM-kills an
overrun, reported as exit 137 with ``oom_killed`` as Nomad's docker driver does.
Docker tasks run their ``config.command`` + ``config.args`` directly, ignoring the
image. Where no memory cgroup can be made, tasks run without a limit.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.backends.cgroups import PREFIX, CgroupParent, CgroupUnavailable, MemoryCgroup
from tests.nomad_double.state import ClusterState
from tests.nomad_double.templates import TaskSetupError, render_template

_SETPRIV = shutil.which("setpriv")


def _in_lifecycle_order(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prestart hooks, then the main tasks (and poststart hooks), then poststop hooks.

    The double runs an allocation's tasks one after another in that order; poststop
    tasks run even when a main task failed, as Nomad runs them after the main tasks exit.
    """
    rank = {"prestart": 0, "poststart": 1, "poststop": 2}
    return sorted(tasks, key=lambda t: rank.get((t.get("Lifecycle") or {}).get("Hook"), 1))


@dataclass(frozen=True)
class TaskExit:
    """How a task process ended, as a Nomad driver reports it."""

    exit_code: int
    signal: int = 0
    oom_killed: bool = False


class TaskProcess:
    """One task's process in its own memory cgroup, stdout/stderr appended to files."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        stdout: Path,
        stderr: Path,
        memory_mb: int | None,
        cgroups: CgroupParent | None,
    ) -> None:
        self.cgroup: MemoryCgroup | None = None
        if cgroups is not None and memory_mb:
            name = f"{PREFIX}{os.getpid()}-nomad-double-{uuid.uuid4().hex[:12]}"
            self.cgroup = cgroups.create(name, memory_mb * 2**20)
            # The shell joins the cgroup before exec'ing the task: no unlimited window.
            join = 'echo $$ > "$0" && exec "$@"'
            argv = ["/bin/sh", "-c", join, str(self.cgroup.procs_file), *argv]
        if _SETPRIV:  # the task dies with the runner thread (no orphans if the test is killed)
            argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        with stdout.open("ab") as out, stderr.open("ab") as err:
            self.process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait(self) -> TaskExit:
        code = self.process.wait()
        oom = False
        if self.cgroup is not None:
            oom = self.cgroup.oom_kills() > 0
            self.cgroup.remove()
        if code < 0:
            return TaskExit(exit_code=128 - code, signal=-code, oom_killed=oom)
        return TaskExit(exit_code=code, oom_killed=oom)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill()


def rfc3339(ns: int) -> str:
    """Nomad's RFC 3339 timestamp with nanoseconds."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def event(kind: str, display: str, *, details: dict[str, str] | None = None, **extra: Any):
    """A task event with the fields Nomad's API returns."""
    return {
        "Type": kind,
        "Time": time.time_ns(),
        "Message": "",
        "DisplayMessage": display,
        "Details": details or {},
        "FailsTask": extra.pop("FailsTask", False),
        "ExitCode": extra.pop("ExitCode", 0),
        "Signal": extra.pop("Signal", 0),
        "KillReason": "",
        "RestartReason": "",
        "DriverError": extra.pop("DriverError", ""),
        **extra,
    }


def _terminated(result: TaskExit) -> dict[str, Any]:
    details = {"exit_code": str(result.exit_code), "signal": str(result.signal)}
    display = f"Exit Code: {result.exit_code}"
    if result.signal:
        display += f", Signal: {result.signal}"
    if result.oom_killed:
        details.update(oom_killed="true", exit_message="OOM Killed")
        display += ', Exit Message: "OOM Killed"'
    return event(
        "Terminated", display, details=details, ExitCode=result.exit_code, Signal=result.signal
    )


_VAR = re.compile(r"\$\{([^}]+)\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Nomad's ``${VAR}`` interpolation from the task environment (unknown names left as is)."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value)


class AllocationRunner:
    """Runs allocations on the double's single node: task processes, events, lost nodes."""

    def __init__(self, root: Path, slots: int | None = None) -> None:
        self.root = root
        self._slots = threading.BoundedSemaphore(slots) if slots else None
        try:
            self.cgroups: CgroupParent | None = CgroupParent.detect()
        except CgroupUnavailable:
            self.cgroups = None
        self.state: ClusterState | None = None
        self._processes: dict[str, TaskProcess] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, alloc: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._run, args=(alloc,), daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def stop(self, alloc: dict[str, Any]) -> None:
        with self._lock:
            process = self._processes.get(alloc["ID"])
        if process is not None:
            process.kill()

    def close(self) -> None:
        with self._lock:
            processes, threads = list(self._processes.values()), list(self._threads)
        for process in processes:
            process.kill()
        for thread in threads:
            thread.join(timeout=10)

    def alloc_dir(self, alloc_id: str) -> Path:
        return self.root / "allocs" / alloc_id

    # -- one allocation -----------------------------------------------------------------

    def _run(self, alloc: dict[str, Any]) -> None:
        """One allocation; with ``slots`` set it waits (ClientStatus pending) for a free one."""
        if self._slots is None:
            self._run_allocation(alloc)
            return
        with self._slots:
            self._run_allocation(alloc)

    def _run_allocation(self, alloc: dict[str, Any]) -> None:
        state = self.state
        job = alloc["Job"]
        group = next(g for g in job["TaskGroups"] if g["Name"] == alloc["TaskGroup"])
        lose, replace = state.take_loss(job["ID"])
        logs = self.alloc_dir(alloc["ID"]) / "alloc" / "logs"
        logs.mkdir(parents=True)
        for task in group["Tasks"]:
            state.task_event(alloc, task["Name"], event("Received", "Task received by client"))
        failed = False
        for task in _in_lifecycle_order(group["Tasks"]):
            poststop = (task.get("Lifecycle") or {}).get("Hook") == "poststop"
            if alloc["DesiredStatus"] != "run" or (failed and not poststop):
                continue
            outcome = self._run_task(alloc, job, group, task, lose)
            if outcome == "lost":
                alloc["_replace_lost"] = replace
                state.end_alloc(alloc, "lost", "alloc is lost since its node is down")
                return
            failed = failed or outcome != "complete"
        if failed:
            state.end_alloc(alloc, "failed", "Failed tasks")
        else:
            state.end_alloc(alloc, "complete", "All tasks have completed")

    def _run_task(self, alloc, job, group, task, lose: bool) -> str:
        state = self.state
        name = task["Name"]
        task_dir = self.alloc_dir(alloc["ID"]) / name
        for sub in ("local", "secrets", "tmp"):
            (task_dir / sub).mkdir(parents=True, exist_ok=True)
        state.task_event(alloc, name, event("Task Setup", "Building Task Directory"))
        env = self._environment(alloc, job, group, task, task_dir)
        try:
            env.update(self._render_templates(alloc, job, task, task_dir))
            argv = self._argv(task, env)
        except TaskSetupError as error:
            state.task_event(
                alloc,
                name,
                event("Setup Failure", str(error), FailsTask=True),
                State="dead",
                Failed=True,
                FinishedAt=rfc3339(time.time_ns()),
            )
            return "failed"
        if job.get("Payload") and task.get("DispatchPayload"):
            target = task_dir / "local" / task["DispatchPayload"]["File"]
            target.write_bytes(base64.b64decode(job["Payload"]))
        if not shutil.which(argv[0], path=env.get("PATH")):
            return self._driver_failure(alloc, name, f'exec: "{argv[0]}": not found')
        restart = group.get("RestartPolicy") or {}
        attempts = restart.get("Attempts", 0)
        logs = self.alloc_dir(alloc["ID"]) / "alloc" / "logs"
        while True:
            try:
                process = TaskProcess(
                    argv,
                    env=env,
                    cwd=task_dir,
                    stdout=logs / f"{name}.stdout.0",
                    stderr=logs / f"{name}.stderr.0",
                    memory_mb=task["Resources"]["MemoryMB"],
                    cgroups=self.cgroups,
                )
            except OSError as error:
                return self._driver_failure(alloc, name, str(error))
            with self._lock:
                self._processes[alloc["ID"]] = process
            if alloc["DesiredStatus"] != "run":  # stopped while starting
                process.kill()
            state.task_event(
                alloc,
                name,
                event("Started", "Task started by client"),
                State="running",
                StartedAt=rfc3339(time.time_ns()),
            )
            state.update_alloc(alloc, ClientStatus="running", ClientDescription="Tasks are running")
            if lose:
                process.kill()
                process.wait()
                with self._lock:
                    self._processes.pop(alloc["ID"], None)
                return "lost"
            result = process.wait()
            with self._lock:
                self._processes.pop(alloc["ID"], None)
            finished = rfc3339(time.time_ns())
            state.task_event(alloc, name, _terminated(result))
            if alloc["DesiredStatus"] != "run":
                killed = event("Killed", "Task successfully killed")
                state.task_event(alloc, name, killed, State="dead", FinishedAt=finished)
                return "complete"
            if result.exit_code == 0:
                state.task_event(alloc, name, None, State="dead", FinishedAt=finished)
                return "complete"
            restarts = alloc["TaskStates"][name]["Restarts"]
            if restarts < attempts:
                state.task_event(
                    alloc,
                    name,
                    event("Restarting", "Task restarting in 0s"),
                    Restarts=restarts + 1,
                    LastRestart=finished,
                )
                continue
            reason = "Policy allows no restarts" if not attempts else "Exceeded allowed attempts"
            state.task_event(
                alloc,
                name,
                event("Not Restarting", reason, FailsTask=True),
                State="dead",
                Failed=True,
                FinishedAt=finished,
            )
            return "failed"

    def _driver_failure(self, alloc: dict[str, Any], task: str, error: str) -> str:
        failure = event("Driver Failure", f"failed to launch command with executor: {error}")
        failure.update(FailsTask=True, DriverError=error)
        finished = rfc3339(time.time_ns())
        self.state.task_event(alloc, task, failure, State="dead", Failed=True, FinishedAt=finished)
        return "failed"

    def _environment(self, alloc, job, group, task, task_dir: Path) -> dict[str, str]:
        """What a raw_exec task sees: the agent's environment plus Nomad's task variables."""
        alloc_dir = self.alloc_dir(alloc["ID"])
        env = dict(os.environ)
        env.update(
            NOMAD_ALLOC_ID=alloc["ID"],
            NOMAD_ALLOC_NAME=alloc["Name"],
            NOMAD_ALLOC_DIR=str(alloc_dir / "alloc"),
            NOMAD_TASK_DIR=str(task_dir / "local"),
            NOMAD_SECRETS_DIR=str(task_dir / "secrets"),
            NOMAD_TASK_NAME=task["Name"],
            NOMAD_GROUP_NAME=group["Name"],
            NOMAD_JOB_ID=job["ID"],
            NOMAD_JOB_NAME=job["Name"],
            NOMAD_JOB_PARENT_ID=job["ParentID"],
            NOMAD_NAMESPACE=job["Namespace"],
            NOMAD_REGION=job["Region"],
            NOMAD_MEMORY_LIMIT=str(task["Resources"]["MemoryMB"]),
        )
        for key, value in {**job["Meta"], **group["Meta"], **task["Meta"]}.items():
            env[f"NOMAD_META_{key}"] = value
            env[f"NOMAD_META_{key.upper()}"] = value
        for key, value in task["Env"].items():
            env[key] = interpolate(value, env)
        return env

    @staticmethod
    def _argv(task: dict[str, Any], env: dict[str, str]) -> list[str]:
        """``config.command`` + ``config.args`` of raw_exec/exec/docker (the image is ignored)."""
        if task["Driver"] not in ("raw_exec", "exec", "docker"):
            raise TaskSetupError(f"driver {task['Driver']!r} is not supported by this client")
        command = task["Config"].get("command")
        if not command:
            raise TaskSetupError(
                f"task {task['Name']!r}: the double needs config.command (image entrypoints "
                "are not run)"
            )
        return [interpolate(a, env) for a in [command, *task["Config"].get("args", [])]]

    def _render_templates(self, alloc, job, task, task_dir: Path) -> dict[str, str]:
        """Render ``template`` blocks; those with ``env = true`` add KEY=VALUE lines to env."""
        env: dict[str, str] = {}
        for template in task["Templates"]:
            text = render_template(
                template.get("EmbeddedTmpl") or "",
                self.state,
                job,
                lambda path: self._missing_variable(alloc, task["Name"], path),
            )
            target = task_dir / template["DestPath"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            if template.get("Envvars"):
                for line in text.splitlines():
                    key, sep, value = line.partition("=")
                    if sep and key.strip() and not key.lstrip().startswith("#"):
                        env[key.strip()] = value
        return env

    def _missing_variable(self, alloc: dict[str, Any], task: str, path: str) -> bool:
        """Nomad blocks a task whose template reads a missing variable; True to keep waiting."""
        message = f"Missing: nomadVar.block({path}@{alloc['Namespace']}.global)"
        events = alloc["TaskStates"][task]["Events"]
        if not events or events[-1]["DisplayMessage"] != message:
            self.state.task_event(alloc, task, event("Template", message))
        index = self.state.tables["vars"]
        self.state.block(("vars",), index, 1.0)
        return alloc["DesiredStatus"] == "run" and not self.state.closed
