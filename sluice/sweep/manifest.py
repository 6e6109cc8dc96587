"""The seed's per-index Kubernetes Job, built from the template (dry-run print shows it)."""

from __future__ import annotations

import copy
from typing import Any

from sluice.backends.kubernetes.manifests import first_container, set_env

INDEX_LABEL = "wetlands/index"
BATCH_LABEL = "wetlands/batch"
TIMESTAMP_ANNOTATION = "wetlands/orchestrator-timestamp"
_INDEXED_ONLY = ("completionMode", "backoffLimitPerIndex", "maxFailedIndexes")


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
    """One Job for one index: the seed's names, labels, annotation, env and resources."""
    job = copy.deepcopy(template)
    labels = {INDEX_LABEL: str(index)}
    if batch_label:
        labels[BATCH_LABEL] = batch_label
    metadata = job.setdefault("metadata", {})
    metadata["name"] = name
    metadata["namespace"] = namespace
    metadata["labels"] = {**metadata.get("labels", {}), **labels}
    metadata["annotations"] = {**metadata.get("annotations", {}), TIMESTAMP_ANNOTATION: timestamp}

    spec = job["spec"]
    for key in _INDEXED_ONLY:
        spec.pop(key, None)
    if any(
        r.get("action") == "FailIndex" for r in spec.get("podFailurePolicy", {}).get("rules", [])
    ):
        spec.pop("podFailurePolicy")
    spec.update(parallelism=1, completions=1, backoffLimit=backoff_limit)
    if ttl >= 0:
        spec["ttlSecondsAfterFinished"] = ttl
    else:
        spec.pop("ttlSecondsAfterFinished", None)
    pod_meta = spec["template"].setdefault("metadata", {})
    pod_meta["labels"] = {**pod_meta.get("labels", {}), **labels}

    container = first_container(job)
    set_env(container, {"INDEX": str(index)})
    resources = container.setdefault("resources", {})
    for key, value in (("memory", memory), ("cpu", cpu)):
        if value is not None:
            resources.setdefault("requests", {})[key] = value
            resources.setdefault("limits", {})[key] = value
    return job
