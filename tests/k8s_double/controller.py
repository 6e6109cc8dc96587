"""The Job controller and garbage collector, reacting to store events like kube-controller-manager.

Deliberate differences from the real one (documented for test authors): failed pods are
replaced at once (no 10 s exponential back-off), ``ttlSecondsAfterFinished`` is ignored,
pods carry no ``batch.kubernetes.io/job-tracking`` finalizer (the controller remembers which
pods it counted instead), and ``suspend`` only stops new pods from starting.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.k8s_double import clock
from tests.k8s_double.indexes import format_indexes, parse_indexes
from tests.k8s_double.jobs import INDEX_KEY
from tests.k8s_double.status import ApiError
from tests.k8s_double.store import Event, Store, clone

Obj = dict[str, Any]
log = logging.getLogger(__name__)
TERMINAL = ("Succeeded", "Failed")


def controller_ref(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def finished(job: Obj) -> bool:
    return any(
        c["type"] in ("Complete", "Failed") and c["status"] == "True"
        for c in job.get("status", {}).get("conditions") or ()
    )


class _Tracking:
    """What the controller remembers about one Job between reconciles."""

    def __init__(self) -> None:
        self.counted: set[str] = set()
        self.index_failures: dict[int, int] = {}
        self.deadline_timer: threading.Timer | None = None
        self.vanished: list[Obj] = []  # pods removed since the last reconcile (not yet counted)


class JobController:
    """Creates pods for Jobs, counts their ends, and sets Job status and conditions."""

    def __init__(self, store: Store, delete_pod: Callable[[str, str], None]):
        self.store = store
        self.delete_pod = delete_pod
        self.cond = threading.Condition()
        self.dirty: dict[tuple[str, str, str], None] = {}
        self.tracking: dict[str, _Tracking] = {}
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="k8s-double-jobs", daemon=True)
        store.listeners.append(self._on_event)
        self.thread.start()

    # event intake
    def _on_event(self, event: Event) -> None:
        meta = event.obj["metadata"]
        if event.resource == "jobs":
            if event.type == "DELETED":
                self._enqueue(("gc", meta["namespace"], meta["uid"]))
            elif event.type == "ADDED" or _spec_or_deletion_changed(event.old, event.obj):
                self._enqueue(("job", meta["namespace"], meta["name"]))
        elif event.resource == "pods":
            ref = controller_ref(event.obj)
            if ref and ref.get("kind") == "Job":
                # the Job's tracking finalizer: a pod is counted before it can be gone
                if event.type == "DELETED":
                    with self.cond:
                        tracking = self.tracking.get(ref["uid"])
                        if tracking is not None:
                            tracking.vanished.append(event.obj)
                self._enqueue(("job", meta["namespace"], ref["name"]))

    def _enqueue(self, key: tuple[str, str, str]) -> None:
        with self.cond:
            self.dirty[key] = None
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()
        self.thread.join(timeout=5)
        for tracking in self.tracking.values():
            if tracking.deadline_timer:
                tracking.deadline_timer.cancel()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.dirty and not self.stopped:
                    self.cond.wait()
                if self.stopped:
                    return
                keys = list(self.dirty)
                self.dirty.clear()
            for kind, namespace, name in keys:
                try:
                    if kind == "gc":
                        self._collect(namespace, name)
                    else:
                        self.reconcile(namespace, name)
                except ApiError:
                    self._enqueue((kind, namespace, name))
                except Exception:  # a controller bug must not stop the controller
                    log.exception("k8s double: reconciling %s %s/%s failed", kind, namespace, name)

    # garbage collection of a deleted Job's pods (Background propagation)
    def _collect(self, namespace: str, uid: str) -> None:
        with self.cond:
            tracking = self.tracking.pop(uid, None)
        for pod in self.store.owned_by("pods", uid):
            self._delete(pod)
        if tracking and tracking.deadline_timer:
            tracking.deadline_timer.cancel()

    def _delete(self, pod: Obj) -> None:
        with contextlib.suppress(ApiError):
            self.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"])

    # the reconcile loop body
    def reconcile(self, namespace: str, name: str) -> None:
        with self.store.lock:
            job = self.store.get("jobs", namespace, name)
            if job is None:
                return
            uid = job["metadata"]["uid"]
            pods = self.store.owned_by("pods", uid)
        if job["metadata"].get("deletionTimestamp"):
            for pod in pods:
                self._delete(pod)
            if not self.store.owned_by("pods", uid):
                self._remove_foreground(job)
            return
        if finished(job):
            for pod in pods:
                if pod["status"].get("phase") not in TERMINAL:
                    self._delete(pod)
            return
        with self.cond:
            tracking = self.tracking.setdefault(uid, _Tracking())
            vanished, tracking.vanished = tracking.vanished, []
        plan = _Plan(job, pods, tracking)
        plan.count_ends(vanished)
        terminal = plan.decide()
        if terminal is not None:
            for pod in plan.active:
                self._delete(pod)
            plan.active = []
        elif not job["spec"].get("suspend"):
            for pod in plan.pods_to_create():
                plan.active.append(self._create_pod(pod))
        self._write_status(job, plan, terminal)
        self._arm_deadline(job, tracking)

    def _create_pod(self, pod: Obj) -> Obj:
        """Create with ``generateName`` semantics: a taken name gets a fresh suffix."""
        meta = pod["metadata"]
        while True:
            try:
                return self.store.create("pods", pod)
            except ApiError:
                meta["name"] = meta["generateName"] + clock.name_suffix()

    def _remove_foreground(self, job: Obj) -> None:
        meta = job["metadata"]
        with contextlib.suppress(ApiError):
            self.store.remove("jobs", meta["namespace"], meta["name"])

    def _arm_deadline(self, job: Obj, tracking: _Tracking) -> None:
        deadline = job["spec"].get("activeDeadlineSeconds")
        if deadline is None or tracking.deadline_timer is not None:
            return
        key = ("job", job["metadata"]["namespace"], job["metadata"]["name"])
        timer = threading.Timer(deadline + 0.05, self._enqueue, args=(key,))
        timer.daemon = True
        tracking.deadline_timer = timer
        timer.start()

    def _write_status(self, job: Obj, plan: _Plan, terminal: tuple[str, str, str] | None):
        meta = job["metadata"]
        stamp = clock.now()

        def mutate(current: Obj) -> None:
            status = current.setdefault("status", {})
            if finished(current):
                return
            status.setdefault("startTime", plan.start_time)
            _set_count(status, "active", len(plan.active))
            status["ready"] = sum(1 for pod in plan.active if _ready(pod))
            _set_count(status, "succeeded", plan.succeeded)
            _set_count(status, "failed", plan.failed)
            status["terminating"] = plan.terminating
            status["uncountedTerminatedPods"] = {}
            if plan.indexed:
                if plan.completed_indexes:
                    status["completedIndexes"] = format_indexes(plan.completed_indexes)
                if plan.per_index_limit is not None:
                    status["failedIndexes"] = format_indexes(plan.failed_indexes)
            if terminal is not None:
                kind, reason, message = terminal
                conditions = status.setdefault("conditions", [])
                interim = "SuccessCriteriaMet" if kind == "Complete" else "FailureTarget"
                for kind_ in (interim, kind):
                    conditions.append(
                        {
                            "type": kind_,
                            "status": "True",
                            "lastProbeTime": stamp,
                            "lastTransitionTime": stamp,
                            "reason": reason,
                            "message": message,
                        }
                    )
                if kind == "Complete":
                    status["completionTime"] = stamp

        with contextlib.suppress(ApiError):
            self.store.update("jobs", meta["namespace"], meta["name"], mutate)


def _spec_or_deletion_changed(old: Obj | None, new: Obj) -> bool:
    """False for status-only writes (mostly the controller's own): nothing to reconcile."""
    if old is None:
        return True
    before, after = old["metadata"], new["metadata"]
    return before.get("generation") != after.get("generation") or before.get(
        "deletionTimestamp"
    ) != after.get("deletionTimestamp")


def _set_count(status: Obj, field: str, value: int) -> None:
    if value:
        status[field] = value
    else:
        status.pop(field, None)


def _ready(pod: Obj) -> bool:
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", ())
    )


def pod_index(pod: Obj) -> int | None:
    value = (pod["metadata"].get("annotations") or {}).get(INDEX_KEY)
    return int(value) if value is not None else None


def policy_action(policy: Obj | None, pod: Obj) -> tuple[str, int, str] | None:
    """The first podFailurePolicy rule a failed pod matches: (action, rule index, message)."""
    for i, rule in enumerate((policy or {}).get("rules") or ()):
        codes = rule.get("onExitCodes")
        if codes is not None:
            statuses = pod["status"].get("containerStatuses") or ()
            for container in statuses:
                if codes.get("containerName") not in (None, container["name"]):
                    continue
                terminated = container.get("state", {}).get("terminated") or {}
                code = terminated.get("exitCode")
                if code in (None, 0):
                    continue
                inside = code in codes.get("values", ())
                if inside == (codes.get("operator") == "In"):
                    message = (
                        f"Container {container['name']} for pod "
                        f"{pod['metadata']['namespace']}/{pod['metadata']['name']} failed with "
                        f"exit code {code} matching {rule['action']} rule at index {i}"
                    )
                    return rule["action"], i, message
        for wanted in rule.get("onPodConditions") or ():
            for condition in pod["status"].get("conditions") or ():
                if condition["type"] == wanted["type"] and condition["status"] == wanted.get(
                    "status", "True"
                ):
                    message = (
                        f"Pod {pod['metadata']['namespace']}/{pod['metadata']['name']} has "
                        f"condition {condition['type']} matching {rule['action']} rule at index {i}"
                    )
                    return rule["action"], i, message
    return None


class _Plan:
    """One reconcile's view of a Job: counts, indexes, active pods, and what to do next."""

    def __init__(self, job: Obj, pods: list[Obj], tracking: _Tracking):
        self.job = job
        self.spec = job["spec"]
        status = job.get("status", {})
        self.tracking = tracking
        self.pods = pods
        self.start_time = status.get("startTime") or clock.now()
        self.indexed = self.spec.get("completionMode") == "Indexed"
        self.per_index_limit = self.spec.get("backoffLimitPerIndex")
        self.succeeded = status.get("succeeded", 0)
        self.failed = status.get("failed", 0)
        self.completed_indexes = parse_indexes(status.get("completedIndexes"))
        self.failed_indexes = parse_indexes(status.get("failedIndexes"))
        running = [pod for pod in pods if pod["status"].get("phase") not in TERMINAL]
        self.active = [pod for pod in running if not pod["metadata"].get("deletionTimestamp")]
        self.terminating = len(running) - len(self.active)
        # podReplacementPolicy TerminatingOrFailed (the default without a podFailurePolicy):
        # a pod being deleted counts as failed and is replaced at once, as isPodFailed does
        self.deleting_fails = self.spec.get("podReplacementPolicy") != "Failed"
        self.fail_job: tuple[str, str] | None = None

    def count_ends(self, vanished: list[Obj]) -> None:
        """Count pods that ended since the last reconcile; ``vanished`` ones that were
        removed before they ended failed."""
        ended = [(pod, _phase(pod, self.deleting_fails)) for pod in self.pods]
        ended += [(pod, _phase(pod, True) if _ended(pod) else "Failed") for pod in vanished]
        for pod, phase in sorted(ended, key=lambda e: int(e[0]["metadata"]["resourceVersion"])):
            uid = pod["metadata"]["uid"]
            if phase not in TERMINAL or uid in self.tracking.counted:
                continue
            self.tracking.counted.add(uid)
            index = pod_index(pod)
            if phase == "Succeeded":
                if self.indexed:
                    if index not in self.completed_indexes and index not in self.failed_indexes:
                        self.completed_indexes.add(index)
                        self.succeeded += 1
                else:
                    self.succeeded += 1
                continue
            matched = policy_action(self.spec.get("podFailurePolicy"), pod)
            action = matched[0] if matched else "Count"
            if action == "Ignore":
                continue
            self.failed += 1
            if action == "FailJob" and self.fail_job is None:
                self.fail_job = ("PodFailurePolicy", matched[2])
            if not self.indexed or self.per_index_limit is None or index is None:
                continue
            failures = self.tracking.index_failures.get(index, 0) + 1
            self.tracking.index_failures[index] = failures
            if action == "FailIndex" or failures > self.per_index_limit:
                self.failed_indexes.add(index)

    def decide(self) -> tuple[str, str, str] | None:
        """(condition type, reason, message) when the Job just reached its end."""
        if self.fail_job:
            return ("Failed", *self.fail_job)
        if self.failed > self.spec["backoffLimit"]:
            return ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        limit = self.spec.get("maxFailedIndexes")
        if limit is not None and len(self.failed_indexes) > limit:
            return (
                "Failed",
                "MaxFailedIndexesExceeded",
                "Job has exceeded the specified maximal number of failed indexes",
            )
        deadline = self.spec.get("activeDeadlineSeconds")
        if deadline is not None and time.time() >= clock.parse(self.start_time) + deadline:
            return ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        completions = self.spec.get("completions")
        if self.indexed:
            done = self.completed_indexes | self.failed_indexes
            if len(done) >= completions and not self._active_indexes() - done:
                if self.failed_indexes:
                    return ("Failed", "FailedIndexes", "Job has failed indexes")
                return (
                    "Complete",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                )
            return None
        if completions is not None and self.succeeded >= completions:
            return ("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
        if completions is None and self.succeeded and not self.active:
            return ("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
        return None

    def _active_indexes(self) -> set[int]:
        return {pod_index(pod) for pod in self.active}

    def pods_to_create(self) -> list[Obj]:
        room = self.spec["parallelism"] - len(self.active)
        if room <= 0:
            return []
        completions = self.spec.get("completions")
        if self.indexed:
            busy = self._active_indexes() | self.completed_indexes | self.failed_indexes
            pending = [i for i in range(completions) if i not in busy][:room]
            return [self._pod(i) for i in pending]
        if completions is None:
            return [] if self.succeeded else [self._pod(None) for _ in range(room)]
        wanted = min(room, completions - self.succeeded - len(self.active))
        return [self._pod(None) for _ in range(max(wanted, 0))]

    def _pod(self, index: int | None) -> Obj:
        job = self.job
        meta = job["metadata"]
        template = clone(job["spec"]["template"])
        pod_meta = template.get("metadata") or {}
        labels = pod_meta.get("labels") or {}
        annotations = pod_meta.get("annotations") or {}
        spec = template["spec"]
        prefix = f"{meta['name']}-"
        if index is not None:
            prefix = f"{meta['name']}-{index}-"
            labels[INDEX_KEY] = str(index)
            annotations[INDEX_KEY] = str(index)
            failures = self.tracking.index_failures.get(index, 0)
            if self.per_index_limit is not None:
                annotations["batch.kubernetes.io/job-index-failure-count"] = str(failures)
            spec.setdefault("hostname", f"{meta['name']}-{index}")
            for container in spec.get("containers", ()) + spec.get("initContainers", []):
                container.setdefault("env", []).append(
                    {
                        "name": "JOB_COMPLETION_INDEX",
                        "valueFrom": {
                            "fieldRef": {
                                "apiVersion": "v1",
                                "fieldPath": f"metadata.annotations['{INDEX_KEY}']",
                            }
                        },
                    }
                )
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": prefix + clock.name_suffix(),
                "generateName": prefix,
                "namespace": meta["namespace"],
                "uid": clock.new_uid(),
                "creationTimestamp": clock.now(),
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": _qos(spec)},
        }


def _ended(pod: Obj) -> bool:
    return pod["status"].get("phase") in TERMINAL


def _phase(pod: Obj, deleting_fails: bool) -> str | None:
    """The phase the controller counts: a pod being deleted that has not succeeded is a
    failure when its Job replaces terminating pods."""
    phase = pod["status"].get("phase")
    if deleting_fails and pod["metadata"].get("deletionTimestamp") and phase != "Succeeded":
        return "Failed"
    return phase


def _qos(spec: Obj) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers", ())]
    if not any(r.get("limits") or r.get("requests") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k)
        and (r.get("limits") or {}).get(k)
        == (r.get("requests") or {}).get(k, (r.get("limits") or {}).get(k))
        for r in resources
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"
