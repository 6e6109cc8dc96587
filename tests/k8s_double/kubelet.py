"""The double's one node: runs pods and writes their status like a kubelet.

Modes:
- ``process`` (default): the first container's ``command + args`` runs as a local process
  through ``sluice.backends.local.LocalBackend``, under the container's memory limit in
  its own cgroup, so an overrun is a real kernel OOM kill (``OOMKilled``, exit code 137).
- ``instant``: pods end as soon as they are created; ``outcome(pod)`` may return
  ``(exit_code, reason)`` to end one otherwise (default: success).
- ``hold``: pods start and keep running until a test ends them with ``finish``/``evict``.

Deleting a running pod is graceful, as on a node: the API marks it (``deletionTimestamp``)
and the kubelet sends its container's process SIGTERM, then SIGKILL once the grace period
(``deletionGracePeriodSeconds``) is over. The container's exit decides the pod's last phase
(exit code 0: Succeeded, else Failed; 143 for SIGTERM, 137 for SIGKILL), then the pod is
removed. A held or instant pod has no process: it ends at once as one SIGTERM killed (143).

Images (process mode): ``add_image(name, entrypoint, path)`` maps an image to what its
container would run: the ``entrypoint`` (Docker's ENTRYPOINT) when the container sets no
``command``, and ``path`` directories first on ``PATH`` (say, a venv's ``bin`` holding the
wheel the image installs). Unmapped images run on the host's ``PATH``, as before.

ServiceAccounts: a pod whose ``serviceAccountName`` exists (``Rbac``) gets a token issued
for it and ``KUBECONFIG`` pointing at a kubeconfig for the double with that token and the
pod's namespace (a real kubelet mounts the token under
``/var/run/secrets/kubernetes.io/serviceaccount``, which a local process cannot have), plus
``KUBERNETES_SERVICE_HOST``/``PORT``: in-pod clients are authorized by the RBAC rules.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import re
import shutil
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from sluice.backends.expansion import expand, expand_command
from sluice.backends.local import LocalBackend
from sluice.jobs import JobResult, JobSpec, Outcome
from sluice.quantity import parse_memory
from tests.k8s_double import clock
from tests.k8s_double.status import ApiError
from tests.k8s_double.store import Event, Store

Obj = dict[str, Any]
Outcome_ = Callable[[Obj], "tuple[int, str] | None"]
log = logging.getLogger(__name__)
MODES = ("process", "instant", "hold")


@dataclass(frozen=True)
class Image:
    """What a container of this image runs locally: its ENTRYPOINT and its PATH."""

    entrypoint: tuple[str, ...] = ()
    path: tuple[str, ...] = ()


NODE = "double-node"
_FIELD_REF = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class Kubelet:
    """Starts pods as they appear in the store and reports how they end."""

    def __init__(
        self,
        store: Store,
        mode: str = "process",
        *,
        log_dir: Path,
        capacity: int = 16,
        outcome: Outcome_ | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"kubelet mode {mode!r}: expected one of {MODES}")
        self.store = store
        self.mode = mode
        self.outcome = outcome
        self.log_dir = log_dir
        self.capacity = capacity
        self.backend: LocalBackend | None = None
        self.names = itertools.count()
        self.running: dict[str, str] = {}  # pod uid -> local job name, while it runs
        self.log_names: dict[str, str] = {}  # pod uid -> local job name, for its log
        self.logs: dict[str, str] = {}  # pod uid -> text given by finish()
        self.kills: dict[str, threading.Timer] = {}  # pod uid -> SIGKILL when its grace ends
        self.images: dict[str, Image] = {}
        self.api_url: str | None = None  # set by the double once its server listens
        self.issue_token: Callable[[str, str], str | None] = lambda namespace, account: None
        self.lock = threading.Lock()
        self.work: queue.SimpleQueue[tuple[str, str, str] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="k8s-double-kubelet", daemon=True)
        store.listeners.append(self._on_event)
        self.thread.start()

    def set_mode(self, mode: str, outcome: Outcome_ | None = None) -> None:
        """Switch how pods created from now on run."""
        if mode not in MODES:
            raise ValueError(f"kubelet mode {mode!r}: expected one of {MODES}")
        self.mode, self.outcome = mode, outcome

    def add_image(
        self, name: str, entrypoint: list[str] | None = None, path: list[Path] | None = None
    ) -> None:
        """Run containers of image ``name`` with this ENTRYPOINT and these PATH directories."""
        self.images[name] = Image(tuple(entrypoint or ()), tuple(str(p) for p in path or ()))

    def _on_event(self, event: Event) -> None:
        if event.resource != "pods":
            return
        meta = event.obj["metadata"]
        if event.type == "ADDED":
            self.work.put(("start", meta["namespace"], meta["name"]))
        elif event.type == "DELETED":
            self.work.put(("kill", meta["uid"], ""))
        elif meta.get("deletionTimestamp") and not (event.old or {}).get("metadata", {}).get(
            "deletionTimestamp"
        ):
            self.work.put(("stop", meta["namespace"], meta["name"]))

    def _run(self) -> None:
        while (item := self.work.get()) is not None:
            action, first, second = item
            try:
                if action == "start":
                    self._start(first, second)
                elif action == "stop":
                    self._stop(first, second)
                else:
                    self._kill(first)
            except Exception:  # a kubelet bug must not stop the kubelet
                log.exception("k8s double kubelet: %s %s/%s failed", action, first, second)

    def close(self) -> None:
        self.work.put(None)
        self.thread.join(timeout=5)
        for timer in list(self.kills.values()):
            timer.cancel()
        if self.backend is not None:
            self.backend.close()

    # starting pods
    def _start(self, namespace: str, name: str) -> None:
        pod = self.store.get("pods", namespace, name)
        if pod is None or pod["status"].get("phase") != "Pending":
            return
        if self.mode == "instant":
            ending = self.outcome(pod) if self.outcome else None
            code, reason = ending if ending else (0, "Completed")
            self._terminate(pod, code, reason)
            return
        now = clock.now()
        job_name = None
        if self.mode == "process":
            try:
                job_name = self._launch(pod)
            except _StartError as error:
                self._terminate(pod, 128, "StartError", message=str(error))
                return

        def running(current: Obj) -> None:
            current["spec"]["nodeName"] = NODE
            current["status"] = {
                **_base_status(current, now),
                "phase": "Running",
                "conditions": _conditions(now, ready=True),
                "containerStatuses": [
                    _container_status(c, {"running": {"startedAt": now}}, ready=True)
                    for c in current["spec"]["containers"]
                ],
            }

        self._update(pod, running)
        if job_name is not None:
            threading.Thread(
                target=self._await, args=(pod, job_name), name="k8s-double-pod", daemon=True
            ).start()

    def _launch(self, pod: Obj) -> str:
        container = pod["spec"]["containers"][0]
        image = self.images.get(container.get("image") or "")
        command = list(container.get("command") or []) or list(image.entrypoint if image else ())
        argv = command + list(container.get("args") or [])
        if not argv:
            raise _StartError("the double cannot run an image's entrypoint: set command")
        search = os.pathsep.join([*(image.path if image else ()), os.environ.get("PATH", "")])
        if shutil.which(argv[0], path=search) is None:
            raise _StartError(
                "failed to create containerd task: failed to create shim task: OCI runtime "
                f'create failed: exec: "{argv[0]}": executable file not found in $PATH: unknown'
            )
        workdir = container.get("workingDir")
        if workdir is not None and not Path(workdir).is_dir():
            raise _StartError(
                "failed to create containerd task: failed to create shim task: OCI runtime "
                f'create failed: chdir to cwd ("{workdir}") set in config.json failed: '
                "no such file or directory: unknown"
            )
        limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
        declared: dict[str, str] = {}  # what $(VAR) sees: the container's own list, in order
        for var in container.get("env") or ():
            declared[var["name"]] = (
                expand(str(var["value"]), declared) if "value" in var else _env_value(pod, var)
            )
        name = f"pod{next(self.names)}"
        pid_file = self.log_dir.parent / "pod-pids" / name
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        system = {"HOSTNAME": pod["spec"].get("hostname") or pod["metadata"]["name"]}
        if image is not None and image.path:
            system["PATH"] = search
        system.update(self._cluster_env(pod, name))
        spec = JobSpec(
            name=name,
            # the container's process keeps the shell's pid (exec): the one SIGTERM goes to
            command=["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(pid_file)]
            + expand_command(argv, declared),
            env={**system, **declared},
            memory_bytes=parse_memory(limit) if limit else None,
            workdir=workdir,
        )
        with self.lock:
            if self.backend is None:
                self.backend = LocalBackend(parallelism=self.capacity, log_dir=self.log_dir)
            self.running[pod["metadata"]["uid"]] = name
            self.log_names[pod["metadata"]["uid"]] = name
        self.backend.submit([spec])
        return name

    def _cluster_env(self, pod: Obj, name: str) -> dict[str, str]:
        """``KUBECONFIG`` (the pod's ServiceAccount token) and the API service's address."""
        account = pod["spec"].get("serviceAccountName")
        namespace = pod["metadata"]["namespace"]
        token = self.issue_token(namespace, account) if account and self.api_url else None
        if token is None or self.api_url is None:
            return {}
        path = self.log_dir.parent / "pod-credentials" / f"{name}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "in-cluster", "cluster": {"server": self.api_url}}],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [
                {
                    "name": "in-cluster",
                    "context": {"cluster": "in-cluster", "user": account, "namespace": namespace},
                }
            ],
            "current-context": "in-cluster",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        where = urlsplit(self.api_url)
        return {
            "KUBECONFIG": str(path),
            "KUBERNETES_SERVICE_HOST": where.hostname or "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(where.port or 80),
        }

    def _await(self, pod: Obj, job_name: str) -> None:
        result = next(iter(self.backend.wait([job_name])))
        if result.outcome is Outcome.CANCELLED:
            return
        code, reason, message = _termination(result)
        self._terminate(pod, code, reason, message=message)

    def _kill(self, uid: str) -> None:
        with self.lock:
            name = self.running.get(uid)
        if name is not None and self.backend is not None:
            self.backend.delete([name])

    # graceful deletion
    def _stop(self, namespace: str, name: str) -> None:
        """SIGTERM the deleted pod's container; SIGKILL it when the grace period ends."""
        pod = self.store.get("pods", namespace, name)
        if pod is None:
            return
        uid = pod["metadata"]["uid"]
        with self.lock:
            local = self.running.get(uid)
        if local is None:  # held, instant, or never started: no process to signal
            self._terminate(pod, 143, "Error")
            return
        try:
            pid = int((self.log_dir.parent / "pod-pids" / local).read_text())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):  # not started yet, or already gone
            pass
        grace = pod["metadata"].get("deletionGracePeriodSeconds", 30)
        timer = threading.Timer(grace, self._grace_over, args=(pod,))
        timer.daemon = True
        with self.lock:
            self.kills[uid] = timer
        timer.start()

    def _grace_over(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            local = self.running.get(uid)
        if local is None:  # it exited within its grace period
            return
        self._kill(uid)
        self._terminate(pod, 137, "Error")

    # ending pods
    def finish(
        self,
        namespace: str,
        name: str,
        exit_code: int,
        reason: str | None = None,
        *,
        phase: str | None = None,
        message: str | None = None,
        log_text: str | None = None,
    ) -> Obj:
        """End a pod as if its container exited with ``exit_code`` (``reason`` as reported)."""
        pod = self.store.require("pods", namespace, name)
        self._kill(pod["metadata"]["uid"])
        if log_text is not None:
            self.logs[pod["metadata"]["uid"]] = log_text
        reason = reason or ("Completed" if exit_code == 0 else "Error")
        return self._terminate(pod, exit_code, reason, message=message, phase=phase)

    def evict(
        self,
        namespace: str,
        name: str,
        *,
        reason: str = "Evicted",
        condition_reason: str = "TerminationByKubelet",
        message: str = "The node was low on resource: memory.",
    ) -> Obj:
        """Fail a pod the way node-pressure eviction (or preemption) does."""
        pod = self.store.require("pods", namespace, name)
        self._kill(pod["metadata"]["uid"])
        return self._terminate(
            pod,
            137,
            "Error",
            phase="Failed",
            pod_reason=reason,
            message=message,
            disruption=condition_reason,
        )

    def _terminate(
        self,
        pod: Obj,
        exit_code: int,
        reason: str,
        *,
        message: str | None = None,
        phase: str | None = None,
        pod_reason: str | None = None,
        disruption: str | None = None,
    ) -> Obj:
        now = clock.now()
        phase = phase or ("Succeeded" if exit_code == 0 else "Failed")
        with self.lock:
            self.running.pop(pod["metadata"]["uid"], None)
            timer = self.kills.pop(pod["metadata"]["uid"], None)
        if timer is not None:
            timer.cancel()

        def ended(current: Obj) -> None:
            if current["status"].get("phase") in ("Succeeded", "Failed"):
                return  # it ended already (its process exited as its grace period ran out)
            current["spec"]["nodeName"] = NODE
            previous = current["status"]
            started_at = previous.get("startTime") or now
            terminated = {
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": started_at,
                "finishedAt": now,
                "containerID": f"double://{current['metadata']['uid']}",
            }
            if message and pod_reason is None:
                terminated["message"] = message
            conditions = _conditions(started_at, ready=False, finished=now, phase=phase)
            if disruption:
                conditions.insert(
                    0,
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "lastProbeTime": None,
                        "lastTransitionTime": now,
                        "reason": disruption,
                        "message": message,
                    },
                )
            status = {
                **_base_status(current, started_at),
                "phase": phase,
                "conditions": conditions,
                "containerStatuses": [
                    _container_status(c, {"terminated": terminated}, ready=False)
                    for c in current["spec"]["containers"]
                ],
            }
            if pod_reason:
                status["reason"] = pod_reason
                status["message"] = message
            current["status"] = status

        ended_pod = self._update(pod, ended)
        meta = ended_pod["metadata"]
        if meta.get("deletionTimestamp"):  # deleted while it ran: gone once it stopped
            with contextlib.suppress(ApiError):
                self.store.remove("pods", meta["namespace"], meta["name"])
        return ended_pod

    def _update(self, pod: Obj, mutate: Callable[[Obj], None]) -> Obj:
        meta = pod["metadata"]
        try:
            return self.store.update("pods", meta["namespace"], meta["name"], mutate)
        except ApiError:  # deleted meanwhile
            return pod

    def log_of(self, pod: Obj) -> str:
        uid = pod["metadata"]["uid"]
        if uid in self.logs:
            return self.logs[uid]
        with self.lock:
            name = self.log_names.get(uid)
        return self.backend.logs(name) if name and self.backend else ""


class _StartError(Exception):
    pass


def _termination(result: JobResult) -> tuple[int, str, str | None]:
    if result.outcome is Outcome.OOM:
        return 137, "OOMKilled", None
    if result.outcome is Outcome.SUCCEEDED:
        return 0, "Completed", None
    if result.exit_code is None:
        return 128, "StartError", result.message
    return result.exit_code, "Error", None


def _env_value(pod: Obj, var: Obj) -> str:
    ref = (var.get("valueFrom") or {}).get("fieldRef")
    if not ref:
        return ""
    path = ref["fieldPath"]
    meta = pod["metadata"]
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return meta[path.split(".")[1]]
    if path == "spec.nodeName":
        return NODE
    match = _FIELD_REF.match(path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    return ""


def _base_status(pod: Obj, started_at: str) -> Obj:
    return {
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "qosClass": pod["status"].get("qosClass", "BestEffort"),
        "startTime": started_at,
    }


def _conditions(
    started_at: str, *, ready: bool, finished: str | None = None, phase: str = "Running"
) -> list[Obj]:
    def condition(kind: str, ok: bool, when: str, reason: str | None = None) -> Obj:
        entry = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
        entry["lastTransitionTime"] = when
        if reason:
            entry["reason"] = reason
        return entry

    end_reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
    return [
        condition("PodReadyToStartContainers", ready, finished or started_at),
        condition("Initialized", True, started_at),
        condition("Ready", ready, finished or started_at, None if ready else end_reason),
        condition("ContainersReady", ready, finished or started_at, None if ready else end_reason),
        condition("PodScheduled", True, started_at),
    ]


def _container_status(container: Obj, state: Obj, *, ready: bool) -> Obj:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": f"docker.io/library/{container['image']}@sha256:" + "0" * 64,
        "containerID": state.get("terminated", {}).get("containerID", "double://running"),
        "ready": ready,
        "started": ready,
        "restartCount": 0,
        "state": state,
        "lastState": {},
    }
