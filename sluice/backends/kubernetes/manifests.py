"""Job manifests from a ``JobSpec``: the seed's cloning rules, as data in, data out.

``job.template`` is the full Job manifest to clone (from ``--template-path`` or a
live Job fetched with ``--source-job``); without one a minimal Job is built
from the spec. What is kept from the template: everything except server-owned
fields (status, uid, resourceVersion, selector, the controller's labels). The
first container's ``command``/``args`` stay when the template has either;
``job.command`` is used only when it has neither. Applying a spec changes only what
differs: an env entry keeps its place, a resource already at the spec's quantity keeps
its text, so a finished manifest (the sweep's) goes to the API server as built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluice.errors import SluiceInputError
from sluice.jobs import JobSpec
from sluice.quantity import format_memory, parse_cpu, parse_memory

Manifest = dict[str, Any]

SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "ownerReferences",
    "finalizers",
)
CONTROLLER_LABELS = ("controller-uid", "job-name")
CONTROLLER_LABEL_PREFIX = "batch.kubernetes.io/"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DEFAULT_IMAGE = "python:3.11-slim"


def _clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data (much faster than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


def _user_labels(labels: dict[str, str] | None) -> dict[str, str]:
    return {
        key: value
        for key, value in (labels or {}).items()
        if key not in CONTROLLER_LABELS and not key.startswith(CONTROLLER_LABEL_PREFIX)
    }


def kept_metadata(template: Manifest | None) -> tuple[dict[str, str], ...]:
    """(Job labels, pod labels, Job annotations) that ``clean_template`` keeps; copies no more."""
    meta = (template or {}).get("metadata") or {}
    pod_meta = (((template or {}).get("spec") or {}).get("template") or {}).get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    return _user_labels(meta.get("labels")), _user_labels(pod_meta.get("labels")), annotations


def clean_template(template: Manifest | None) -> Manifest:
    """A copy of a Job manifest with every server-owned field stripped."""
    job = _clone(template) if template else {}
    labels, pod_labels, annotations = kept_metadata(job)
    job["apiVersion"], job["kind"] = "batch/v1", "Job"
    job.pop("status", None)
    meta = job.setdefault("metadata", {})
    for key in SERVER_METADATA:
        meta.pop(key, None)
    meta.pop("namespace", None)
    meta.pop("generateName", None)
    if meta.get("annotations"):
        meta["annotations"] = annotations
    meta["labels"] = labels
    spec = job.setdefault("spec", {})
    spec.pop("selector", None)
    spec.pop("manualSelector", None)
    pod = spec.setdefault("template", {})
    pod.setdefault("metadata", {})["labels"] = pod_labels
    pod_spec = pod.setdefault("spec", {})
    pod_spec.setdefault("restartPolicy", "Never")
    if not pod_spec.get("containers"):
        pod_spec["containers"] = [{"name": "main", "image": DEFAULT_IMAGE}]
    return job


def first_container(job: Manifest) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]["containers"][0]


def set_env(container: dict[str, Any], env: dict[str, str]) -> None:
    """Set ``env`` on a container: a same-name entry is replaced where it stands (its
    ``valueFrom`` goes, as the seed's ``set_index_env``), new names are appended."""
    entries = [
        {"name": e["name"], "value": env[e["name"]]} if e.get("name") in env else e
        for e in container.get("env") or []
    ]
    present = {e.get("name") for e in entries}
    entries += [{"name": k, "value": v} for k, v in env.items() if k not in present]
    container["env"] = entries


def set_resources(
    container: dict[str, Any],
    memory_bytes: int | None,
    cpu: float | None,
    *,
    memory_request_bytes: int | None = None,
    cpu_limit: float | None = None,
) -> None:
    """Requests = limits for memory (and CPU when given), as the seed does, unless a
    smaller memory request or a larger CPU limit is given. Where the container's limit
    already is that quantity (a template's own ``60Gi`` or ``500m``) and no separate
    request or limit is asked for, its resources stay as written."""
    limits = (container.get("resources") or {}).get("limits") or {}
    if memory_request_bytes is None and _same(limits.get("memory"), memory_bytes, parse_memory):
        memory_bytes = None
    if cpu_limit is None and _same(limits.get("cpu"), cpu, parse_cpu):
        cpu = None
    if memory_bytes is None and cpu is None and memory_request_bytes is None and cpu_limit is None:
        return
    resources = container.setdefault("resources", {})
    wanted = {
        "requests": (memory_request_bytes or memory_bytes, cpu),
        "limits": (memory_bytes, cpu_limit or cpu),
    }
    for kind, (memory, cores) in wanted.items():
        section = resources.get(kind) or {}
        if memory is not None:
            section["memory"] = format_memory(memory)
        if cores is not None:
            section["cpu"] = f"{cores:g}"
        resources[kind] = section


def _same(quantity: Any, value: float | None, parse: Callable[[str], float]) -> bool:
    try:
        return quantity is not None and value is not None and parse(quantity) == value
    except SluiceInputError:
        return False


def apply_spec(job: Manifest, spec: JobSpec, *, env: dict[str, str]) -> None:
    """Everything one ``JobSpec`` sets on a cleaned manifest, except name and Job counts."""
    meta = job["metadata"]
    meta["labels"].update(spec.labels)
    meta["annotations"] = {**(meta.get("annotations") or {}), **spec.annotations}
    pod = job["spec"]["template"]
    pod["metadata"]["labels"].update(spec.labels)
    container = first_container(job)
    if not (container.get("command") or container.get("args")):
        container["command"] = list(spec.command)
    if spec.image:
        container["image"] = spec.image
    if spec.workdir:
        container["workingDir"] = spec.workdir
    set_env(container, env)
    set_resources(
        container,
        spec.memory_bytes,
        spec.cpu,
        memory_request_bytes=spec.memory_request_bytes,
        cpu_limit=spec.cpu_limit,
    )
    job["spec"]["backoffLimit"] = spec.backoff_limit
    if spec.timeout_seconds:
        job["spec"]["activeDeadlineSeconds"] = max(1, int(spec.timeout_seconds))


def job_manifest(
    spec: JobSpec, *, labels: dict[str, str] | None = None, namespace: str | None = None
) -> Manifest:
    """The per-index Job for ``spec``: one pod, ``parallelism``/``completions`` 1.

    ``labels`` are extra labels for the Job and its pods (the backend's own).
    ``ttlSecondsAfterFinished`` comes from the template (absent = kept forever).
    """
    job = clean_template(spec.template)
    job["metadata"]["name"] = spec.name
    apply_spec(job, spec, env=dict(spec.env))
    for target in (job["metadata"], job["spec"]["template"]["metadata"]):
        target["labels"].update(labels or {})
    job["spec"]["parallelism"] = 1
    job["spec"]["completions"] = 1
    return in_namespace(job, namespace)


def in_namespace(job: Manifest, namespace: str | None) -> Manifest:
    """``job`` with ``metadata.namespace`` set after its name (as the seed printed it)."""
    if namespace is None:
        return job
    meta = job["metadata"]
    meta.pop("namespace", None)
    job["metadata"] = {"name": meta.pop("name"), "namespace": namespace, **meta}
    return job
