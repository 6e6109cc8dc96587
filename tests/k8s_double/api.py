"""The resource operations behind the HTTP routes: jobs and pods, as the API server does them."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from typing import Any

import yaml

from tests.k8s_double import clock, jobs, schemas
from tests.k8s_double.kubelet import Kubelet
from tests.k8s_double.patch import json_patch, merge_patch, strategic_merge_patch
from tests.k8s_double.selectors import everything, field_selector, label_selector
from tests.k8s_double.status import ApiError, status_body
from tests.k8s_double.store import Store, clone

Obj = dict[str, Any]
Query = dict[str, str]
KINDS = {"jobs": ("Job", "batch/v1"), "pods": ("Pod", "v1")}
PATCH_TYPES = {
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
}


def truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


class Api:
    """Jobs (batch/v1) and pods (v1) in a fixed set of namespaces."""

    def __init__(
        self, store: Store, kubelet: Kubelet, namespaces: set[str], *, schemas: bool = True
    ):
        self.schemas = schemas
        self.store = store
        self.kubelet = kubelet
        self.namespaces = namespaces

    def _namespace(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )

    # reads
    def get(self, resource: str, namespace: str, name: str) -> Obj:
        return self._typed(resource, self.store.require(resource, namespace, name))

    def list(self, resource: str, namespace: str | None, query: Query) -> Obj:
        matches = predicate(resource, query)
        items, rv = self.store.list(resource, namespace, matches)
        meta: Obj = {"resourceVersion": str(rv)}
        start = 0
        if query.get("continue"):
            token = _decode_continue(query["continue"])
            rv = token["rv"]
            meta["resourceVersion"] = str(rv)
            start = next(
                (i for i, obj in enumerate(items) if _key(obj) > token["after"]), len(items)
            )
        limit = int(query.get("limit") or 0)
        page = items[start : start + limit] if limit else items[start:]
        if limit and start + limit < len(items):
            meta["continue"] = _encode_continue(rv, _key(page[-1]))
            meta["remainingItemCount"] = len(items) - start - limit
        kind, api_version = KINDS[resource]
        return {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": page}

    # jobs
    def create_job(self, namespace: str, body: Obj, query: Query) -> Obj:
        self._namespace(namespace)
        self._check_schema(body, (body.get("metadata") or {}).get("name") or "")
        job = jobs.prepare(body, namespace)
        if query.get("dryRun") == "All":
            if self.store.get("jobs", namespace, job["metadata"]["name"]) is not None:
                raise ApiError.already_exists("jobs", job["metadata"]["name"])
            return job
        return self.store.create("jobs", job)

    def _check_schema(self, job: Obj, name: str) -> None:
        if self.schemas:
            schemas.validate(job, "Job", "batch/v1", "batch", name)

    def replace_job(self, namespace: str, name: str, body: Obj, query: Query, status: bool) -> Obj:
        expect = body.get("metadata", {}).get("resourceVersion")
        if not expect:
            raise ApiError(
                422,
                "Invalid",
                f'jobs.batch "{name}" is invalid: metadata.resourceVersion: Invalid value: '
                "0x0: must be specified for an update",
            )
        return self._write_job(namespace, name, lambda _: clone(body), query, status, expect)

    def patch_job(
        self, namespace: str, name: str, body: bytes, content_type: str, query: Query, status: bool
    ) -> tuple[int, Obj]:
        patch = _parse_patch(body, content_type)
        if content_type == "application/apply-patch+yaml":
            if not query.get("fieldManager"):
                raise ApiError.bad_request(
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                    "is required for apply patch"
                )
            if self.store.get("jobs", namespace, name) is None and not status:
                if patch.get("metadata", {}).get("name") not in (None, name):
                    raise ApiError.bad_request("the name of the object does not match the URL")
                return 201, self.create_job(namespace, patch, query)
            apply: Callable[[Obj], Obj] = lambda current: merge_patch(current, patch)  # noqa: E731
        elif content_type == "application/json-patch+json":
            apply = lambda current: json_patch(current, patch)  # noqa: E731
        elif content_type == "application/strategic-merge-patch+json":
            apply = lambda current: strategic_merge_patch(current, patch)  # noqa: E731
        else:
            apply = lambda current: merge_patch(current, patch)  # noqa: E731
        expect = (
            patch.get("metadata", {}).get("resourceVersion") if isinstance(patch, dict) else None
        )
        return 200, self._write_job(namespace, name, apply, query, status, expect)

    def _write_job(
        self,
        namespace: str,
        name: str,
        change: Callable[[Obj], Obj],
        query: Query,
        status: bool,
        expect: str | None,
    ) -> Obj:
        dry_run = query.get("dryRun") == "All"

        def mutate(current: Obj) -> None:
            wanted = change(clone(current))
            if not isinstance(wanted, dict):
                raise ApiError.bad_request("the patched object is not an object")
            self._check_schema(wanted, name)
            if status:
                current["status"] = wanted.get("status") or {}
                return
            jobs.default_update(wanted, current)
            causes = jobs.immutable_change(current, wanted)
            if causes:
                raise ApiError.invalid("Job", "batch", name, causes)
            meta = wanted.get("metadata") or {}
            for field in ("labels", "annotations", "finalizers", "ownerReferences"):
                if meta.get(field) is None:
                    current["metadata"].pop(field, None)
                else:
                    current["metadata"][field] = meta[field]
            if wanted.get("spec") != current["spec"]:
                current["spec"] = wanted["spec"]
                current["metadata"]["generation"] += 1

        if dry_run:
            current = clone(self.store.require("jobs", namespace, name))
            mutate(current)
            return current
        return self.store.update("jobs", namespace, name, mutate, expect_rv=expect)

    def delete_job(self, namespace: str, name: str, options: Obj, query: Query) -> Obj:
        job = self.store.require("jobs", namespace, name)
        policy = query.get("propagationPolicy") or options.get("propagationPolicy")
        if policy is None:
            orphan = options.get(
                "orphanDependents", truthy(query.get("orphanDependents") or "true")
            )
            policy = "Orphan" if orphan else "Background"
        if policy not in ("Orphan", "Background", "Foreground"):
            raise ApiError.bad_request(f'unsupported propagationPolicy "{policy}"')
        uid = (options.get("preconditions") or {}).get("uid")
        if uid and uid != job["metadata"]["uid"]:
            raise ApiError.conflict(
                "jobs",
                name,
                f"Precondition failed: UID in precondition: {uid}, "
                f"UID in object meta: {job['metadata']['uid']}",
            )
        if query.get("dryRun") == "All" or options.get("dryRun") == ["All"]:
            return _deleted_status(job)
        if policy == "Foreground":
            stamp = clock.now()

            def mark(current: Obj) -> None:
                current["metadata"].setdefault("deletionTimestamp", stamp)
                current["metadata"]["deletionGracePeriodSeconds"] = 0
                finalizers = current["metadata"].setdefault("finalizers", [])
                if "foregroundDeletion" not in finalizers:
                    finalizers.append("foregroundDeletion")

            return self.store.update("jobs", namespace, name, mark)
        if policy == "Orphan":
            for pod in self.store.owned_by("pods", job["metadata"]["uid"]):
                self.store.update(
                    "pods",
                    namespace,
                    pod["metadata"]["name"],
                    lambda current: current["metadata"].pop("ownerReferences", None),
                )
        self.store.remove("jobs", namespace, name)
        return _deleted_status(job)

    def delete_jobs(self, namespace: str, options: Obj, query: Query) -> Obj:
        """deletecollection: delete every matching Job; the answer lists them."""
        listing = self.list("jobs", namespace, {**query, "limit": "", "continue": ""})
        for job in listing["items"]:
            with contextlib.suppress(ApiError):
                self.delete_job(namespace, job["metadata"]["name"], options, query)
        return listing

    # pods
    def delete_pod(
        self, namespace: str, name: str, options: Obj | None = None, query: Query | None = None
    ) -> Obj:
        """Graceful deletion as the API server does it: a pod running on the node gets
        ``deletionTimestamp`` (now + the grace period: ``gracePeriodSeconds`` or the pod's
        ``terminationGracePeriodSeconds``) and stays until the kubelet has stopped its
        container (SIGTERM, SIGKILL after the grace period); a pod not on a node, one
        that already ended, or a grace period of 0 is removed at once."""
        pod = self.store.require("pods", namespace, name)
        grace = (query or {}).get("gracePeriodSeconds")
        if grace is None:
            grace = (options or {}).get("gracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        grace = int(grace)
        on_node = pod["spec"].get("nodeName") and pod["status"].get("phase") not in (
            "Succeeded",
            "Failed",
        )
        if not on_node or grace <= 0:
            return self._typed("pods", self.store.remove("pods", namespace, name))
        if pod["metadata"].get("deletionTimestamp"):
            return self._typed("pods", pod)
        deadline = clock.now(after=grace)

        def mark(current: Obj) -> None:
            current["metadata"]["deletionTimestamp"] = deadline
            current["metadata"]["deletionGracePeriodSeconds"] = grace

        return self._typed("pods", self.store.update("pods", namespace, name, mark))

    def pod_log(self, namespace: str, name: str, query: Query) -> str:
        pod = self.store.require("pods", namespace, name)
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container")
        if container is None and len(containers) > 1:
            raise ApiError.bad_request(
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(containers)}]"
            )
        container = container or containers[0]
        if container not in containers:
            raise ApiError.bad_request(f"container {container} is not valid for pod {name}")
        if pod["status"].get("phase") == "Pending":
            raise ApiError.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        text = self.kubelet.log_of(pod) if container == containers[0] else ""
        if query.get("tailLines"):
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(query["tailLines"]) :]) if int(query["tailLines"]) else ""
        if query.get("limitBytes"):
            text = text.encode()[: int(query["limitBytes"])].decode(errors="ignore")
        return text

    @staticmethod
    def _typed(resource: str, obj: Obj) -> Obj:
        kind, api_version = KINDS[resource]
        if obj.get("kind") == kind:
            return obj
        return {"kind": kind, "apiVersion": api_version, **obj}


def predicate(resource: str, query: Query) -> Callable[[Obj], bool]:
    """The combined labelSelector and fieldSelector of a list or watch request."""
    labels = label_selector(query.get("labelSelector"))
    fields = field_selector(resource, query.get("fieldSelector"))
    if fields is everything:
        return labels
    return lambda obj: labels(obj) and fields(obj)


def _key(obj: Obj) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def _encode_continue(rv: int, after: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": after + "\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_continue(token: str) -> dict[str, Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token.encode()))
        return {"rv": int(raw["rv"]), "after": raw["start"].rstrip("\x00")}
    except (ValueError, KeyError, TypeError):
        raise ApiError.bad_request("continue key is not valid") from None


def _parse_patch(body: bytes, content_type: str) -> Any:
    try:
        if content_type == "application/apply-patch+yaml":
            return yaml.safe_load(body.decode())
        return json.loads(body)
    except (ValueError, yaml.YAMLError) as error:
        raise ApiError.bad_request(f"error decoding patch: {error}") from None


def _deleted_status(job: Obj) -> Obj:
    meta = job["metadata"]
    return status_body(
        200,
        "",
        "",
        {"name": meta["name"], "group": "batch", "kind": "jobs", "uid": meta["uid"]},
    )
