"""The seed's per-index Kubernetes Job, built from the template (dry-run print shows it).

As the seed's ``build_single_index_job``: the Job is rebuilt, not copied. Its metadata
is the name, namespace, the template's Job labels plus ``wetlands/index`` (and
``wetlands/batch``), and the annotations ``wetlands/index`` and
``wetlands/orchestrator-timestamp``; its spec is ``parallelism``/``completions`` 1,
``backoffLimit``, ``ttlSecondsAfterFinished`` and the template's pod template. Every
other Job-level field of the template (``completionMode``, ``completions``,
``suspend``, ``activeDeadlineSeconds``, ``podFailurePolicy``, its annotations...)
described the whole Indexed Job and is dropped.
"""

from __future__ import annotations

from typing import Any

from sluice.backends.kubernetes.manifests import set_env

INDEX_LABEL = "wetlands/index"
BATCH_LABEL = "wetlands/batch"
TIMESTAMP_ANNOTATION = "wetlands/orchestrator-timestamp"


def index_job_manifest(
    template: dict[str, Any],
    *,
    name: str,
    namespace: str,
    index: int,
    batch_label: str | None,
    memory: str | None,
    cpu: str | None,
    backoff_limit: int,
    ttl: int,
    timestamp: str,
) -> dict[str, Any]:
    """One Job for one index: the seed's names, labels, annotations, env and resources."""
    labels = {INDEX_LABEL: str(index)}
    if batch_label:
        labels[BATCH_LABEL] = batch_label
    pod = _pod_for_one_index(template["spec"]["template"])
    pod["metadata"]["labels"] = {**pod["metadata"]["labels"], **labels}
    container = pod["spec"]["containers"][0]
    set_env(container, {"INDEX": str(index)})
    if memory is not None or cpu is not None:
        resources = container.setdefault("resources", {})
        for section in ("requests", "limits"):
            values = resources.setdefault(section, {})
            for key, value in (("memory", memory), ("cpu", cpu)):
                if value is not None:
                    values[key] = value
    spec: dict[str, Any] = {
        "parallelism": 1,
        "completions": 1,
        "backoffLimit": backoff_limit,
        "template": pod,
    }
    if ttl >= 0:
        spec["ttlSecondsAfterFinished"] = ttl
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**template["metadata"]["labels"], **labels},
            "annotations": {INDEX_LABEL: str(index), TIMESTAMP_ANNOTATION: timestamp},
        },
        "spec": spec,
    }


def _pod_for_one_index(pod: dict[str, Any]) -> dict[str, Any]:
    """A copy of the (cleaned) pod template deep enough for what changes per index: its
    labels and its first container's env and resources; the rest is shared, read-only."""
    main = dict(pod["spec"]["containers"][0])
    if "resources" in main:
        main["resources"] = {k: dict(v or {}) for k, v in (main["resources"] or {}).items()}
    spec = {**pod["spec"], "containers": [main, *pod["spec"]["containers"][1:]]}
    return {**pod, "metadata": dict(pod["metadata"]), "spec": spec}
