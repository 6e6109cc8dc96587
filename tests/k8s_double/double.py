"""``K8sDouble``: the running double (HTTP server, store, controller, kubelet)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.k8s_double.api import Api
from tests.k8s_double.controller import JobController
from tests.k8s_double.kubelet import Kubelet, Outcome_
from tests.k8s_double.rbac import Rbac
from tests.k8s_double.server import Handler, Server
from tests.k8s_double.store import Event, Store, Watch
from tests.k8s_double.traffic import Faults, RequestLog, WatchBreaks

Obj = dict[str, Any]
NAMESPACE = "biodiversity"


class K8sDouble:
    """A Kubernetes API double on ``url``; see ``start_double`` for the knobs."""

    def __init__(
        self,
        *,
        namespace: str = NAMESPACE,
        kubelet: str = "process",
        outcome: Outcome_ | None = None,
        work_dir: Path | None = None,
        history_limit: int = 100_000,
        bookmark_interval: float = 1.0,
        capacity: int = 16,
        port: int = 0,
        schemas: bool = True,
    ):
        self.namespace = namespace
        self.namespaces = {namespace, "default", "kube-system"}
        self.bookmark_interval = bookmark_interval
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="k8s-double-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.requests = RequestLog()
        self.faults = Faults()
        self.watch_breaks = WatchBreaks()
        self.denied: set[tuple[str, str]] = set()
        self.store = Store(history_limit)
        self.changed = threading.Condition()
        self.changes = 0
        self.store.listeners.append(self._notify)
        self.kubelet = Kubelet(
            self.store,
            kubelet,
            log_dir=self.work_dir / "pod-logs",
            capacity=capacity,
            outcome=outcome,
        )
        self.api = Api(self.store, self.kubelet, self.namespaces, schemas=schemas)
        self.rbac = Rbac(self.namespaces, schemas=schemas)
        self.controller = JobController(self.store, self.api.delete_pod)
        self.server = Server(("127.0.0.1", port), Handler)
        self.server.double = self
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.kubelet.api_url = self.url
        self.kubelet.issue_token = self.rbac.issue_token
        self.kubeconfig = self.work_dir / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(self._kubeconfig()))
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="k8s-double-http", daemon=True
        )
        self._thread.start()

    def _kubeconfig(self) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "double", "cluster": {"server": self.url}}],
            "users": [{"name": "double", "user": {"token": "k8s-double-token"}}],
            "contexts": [
                {
                    "name": "double",
                    "context": {"cluster": "double", "user": "double", "namespace": self.namespace},
                }
            ],
            "current-context": "double",
        }

    # inspection
    def jobs(self, namespace: str | None = None) -> list[Obj]:
        """Jobs stored in ``namespace`` (default: the double's namespace), by name."""
        return self.store.list("jobs", namespace or self.namespace, lambda _: True)[0]

    def pods(self, namespace: str | None = None) -> list[Obj]:
        return self.store.list("pods", namespace or self.namespace, lambda _: True)[0]

    def job(self, name: str, namespace: str | None = None) -> Obj | None:
        return self.store.get("jobs", namespace or self.namespace, name)

    def pods_of(self, job_name: str, namespace: str | None = None) -> list[Obj]:
        job = self.job(job_name, namespace)
        return self.store.owned_by("pods", job["metadata"]["uid"]) if job else []

    def wait_for(self, condition: Callable[[], Any], timeout: float = 60) -> Any:
        """Block until ``condition()`` is truthy (re-checked on every store change)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.changed:
                seen = self.changes
            if result := condition():  # outside the lock: it may read the store
                return result
            with self.changed:
                while self.changes == seen:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"k8s double: condition not met within {timeout} s")
                    self.changed.wait(remaining)

    def _notify(self, event: Event) -> None:
        with self.changed:
            self.changes += 1
            self.changed.notify_all()

    # control
    def set_faults(
        self,
        rate: float,
        kinds: tuple[str, ...] = ("429", "500", "reset"),
        seed: int | None = None,
    ) -> None:
        """Answer this fraction of resource requests with a fault (0 switches them off)."""
        self.faults.set(rate, kinds, seed)

    def break_next_watch(self, after_events: int, how: str = "reset", resource: str = "jobs"):
        """Break the next watch on ``resource`` after it sent ``after_events`` events:
        ``reset`` drops the connection, ``gone`` sends an ``ERROR`` 410 and ends the stream."""
        self.watch_breaks.add(resource, after_events, how)

    def wait_for_watches(self, count: int, timeout: float = 60) -> None:
        """Block until exactly ``count`` watches are open (streams started, not yet ended)."""
        with self.store.watches_changed:
            if not self.store.watches_changed.wait_for(
                lambda: len(self.store.watches) == count, timeout
            ):
                raise TimeoutError(
                    f"k8s double: {len(self.store.watches)} watches open, not {count}"
                )

    def add_image(
        self, name: str, entrypoint: list[str] | None = None, path: list[Path] | None = None
    ) -> None:
        """Containers of image ``name`` run ``entrypoint`` (when they set no ``command``)
        with ``path`` first on ``PATH`` (process-mode kubelet; see ``kubelet.py``)."""
        self.kubelet.add_image(name, entrypoint, path)

    def deny(self, verb: str, resource: str) -> None:
        """Answer ``verb`` on ``resource`` (``jobs``, ``pods/log``...) with 403 Forbidden."""
        self.denied.add((verb, resource))

    def set_kubelet(self, mode: str, outcome: Outcome_ | None = None) -> None:
        """Run pods created from now on in ``process``, ``instant`` or ``hold`` mode."""
        self.kubelet.set_mode(mode, outcome)

    def finish_pod(
        self,
        name: str,
        exit_code: int,
        reason: str | None = None,
        *,
        namespace: str | None = None,
        phase: str | None = None,
        log: str | None = None,
    ) -> Obj:
        """End a pod's container with ``exit_code``, ``reason`` (0 + OOMKilled: issue 131530)."""
        return self.kubelet.finish(
            namespace or self.namespace, name, exit_code, reason, phase=phase, log_text=log
        )

    def evict_pod(
        self,
        name: str,
        *,
        namespace: str | None = None,
        reason: str = "Evicted",
        condition_reason: str = "TerminationByKubelet",
        message: str = "The node was low on resource: memory.",
    ) -> Obj:
        """Fail a pod as node-pressure eviction does (or preemption, by ``reason``)."""
        return self.kubelet.evict(
            namespace or self.namespace,
            name,
            reason=reason,
            condition_reason=condition_reason,
            message=message,
        )

    def compact(self) -> int:
        """Drop the event history: watches resuming from older versions get 410 Gone."""
        self.store.compact()
        return self.store.rv

    def quiet_rv(self, watch: Watch) -> int | None:
        """The store's version if ``watch`` has nothing queued (a safe bookmark), else None."""
        with self.store.lock:
            return self.store.rv if watch.queue.empty() else None

    def close(self) -> None:
        self.server.shutdown()
        self.store.close_watches()
        self.server.server_close()
        self.controller.stop()
        self.kubelet.close()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> K8sDouble:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_double(**options: Any) -> K8sDouble:
    """Start a double outside pytest (benchmarks); ``close()`` it when done.

    Options: ``namespace`` (default ``biodiversity``), ``kubelet`` (``process``, ``instant``,
    ``hold``), ``outcome`` (instant mode: pod -> (exit code, reason) or None),
    ``work_dir``, ``history_limit`` (events kept for watch resumption),
    ``bookmark_interval`` (seconds), ``capacity`` (pods running at once), ``port``,
    ``schemas`` (default True: every object received is validated against the strict
    Kubernetes 1.30-1.37 schemas, 422 if not; False only to time a client without that cost).
    """
    return K8sDouble(**options)
