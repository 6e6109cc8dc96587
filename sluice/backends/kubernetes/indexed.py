"""Indexed mode: many ``JobSpec``s that differ only in env values become ONE Indexed Job.

Grouping: specs of one ``submit`` call join a group when everything but their
name, labels, annotations and env *values* is equal (template, command, image,
memory, CPU, backoff, env keys); a ``sluice/group`` label forces a group and
names its Job. Completion index ``i`` runs the group's ``i``-th spec.

Per-index env: for every env key whose value differs between members, the Job
carries ``<KEY>_MAPPING`` (the values, one line per completion index; for the
sweep that is ``INDEX_MAPPING``) and the container command is wrapped in a
POSIX-shell prelude that exports ``KEY`` = line ``$JOB_COMPLETION_INDEX`` of it,
then ``exec``s the original argv. Values must be single lines.

The spec names of the members, in completion-index order, are stored in the
``sluice/items`` annotation so a later process can map indexes back to items.
Failures: ``backoffLimitPerIndex`` = the specs' ``backoff_limit``, and a
``podFailurePolicy`` fails an index at once on exit 137 (retrying an OOM at the
same size is pointless). Per-item ``timeout_seconds`` is not enforced inside an
Indexed Job (``activeDeadlineSeconds`` would bound the whole group); the wait
timeout bounds it.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from sluice.backends.kubernetes.manifests import (
    Manifest,
    apply_spec,
    clean_template,
    first_container,
    kept_metadata,
    set_env,
)
from sluice.errors import SluiceInputError
from sluice.jobs import JobSpec

GROUP_LABEL = "sluice/group"
ITEMS_ANNOTATION = "sluice/items"
INDEX_ENV = "JOB_COMPLETION_INDEX"
INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
MAX_JOB_NAME = 52  # pod hostnames are <job>-<index>: keep them within 63 characters
MAX_ITEMS_BYTES = 200_000  # annotations share a 256 KiB budget
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PRELUDE = (
    'sluice_pick() { n=0; while IFS= read -r v; do if [ "$n" -eq "$' + INDEX_ENV + '" ];'
    ' then printf "%s" "$v"; return; fi; n=$((n+1)); done; }; '
)


def _essence(spec: JobSpec) -> Manifest:
    """The template without what legitimately differs per item (names, labels, env values)."""
    job = clean_template(spec.template)
    job["metadata"] = {}
    job["spec"]["template"]["metadata"] = {}
    container = first_container(job)
    container["env"] = [e for e in container.get("env") or [] if e.get("name") not in spec.env]
    return job


def _group_key(spec: JobSpec) -> str:
    fields = spec.model_dump(
        mode="json",
        exclude={"name", "labels", "annotations", "env", "timeout_seconds", "template"},
    )
    fields["template"] = _essence(spec)
    fields["env_keys"] = sorted(spec.env)
    fields["group"] = spec.labels.get(GROUP_LABEL)
    return json.dumps(fields, sort_keys=True)


def group(specs: list[JobSpec]) -> list[list[JobSpec]]:
    """Specs that can share one Indexed Job, in submission order."""
    groups: dict[str, list[JobSpec]] = {}
    for spec in specs:
        groups.setdefault(_group_key(spec), []).append(spec)
    return list(groups.values())


def indexed_name(members: list[JobSpec]) -> str:
    """The Indexed Job's name: the ``sluice/group`` label, else a prefix and a digest."""
    forced = members[0].labels.get(GROUP_LABEL)
    if forced:
        if len(forced) > MAX_JOB_NAME:
            raise SluiceInputError(
                f"label {GROUP_LABEL}={forced!r}: at most {MAX_JOB_NAME} characters"
            )
        return forced
    names = [m.name for m in members]
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()[:10]
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix[: MAX_JOB_NAME - 12].rstrip("-")
    return f"{prefix}-{digest}" if prefix else f"sluice-{digest}"


def _varying_env(members: list[JobSpec]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(env common to all members, {key: value per member} for keys that differ)."""
    common, varying = {}, {}
    for key in members[0].env:
        values = [m.env[key] for m in members]
        if len(set(values)) == 1:
            common[key] = values[0]
            continue
        if not _ENV_KEY.match(key):
            raise SluiceInputError(f"env {key!r}: per-index env keys must be shell identifiers")
        if any("\n" in v for v in values):
            raise SluiceInputError(f"env {key!r}: per-index values must be single lines")
        varying[key] = values
    return common, varying


def indexed_manifest(
    name: str,
    members: list[JobSpec],
    *,
    parallelism: int | None = None,
    labels: dict[str, str] | None = None,
) -> Manifest:
    """One Indexed Job running ``members``, completion index ``i`` = ``members[i]``."""
    first = members[0]
    kept = [(kept_metadata(m.template), m) for m in members]  # members differ only here
    common_labels = _common([{**labels, **m.labels} for (labels, _, _), m in kept])
    pod_labels = _common([{**pod, **m.labels} for (_, pod, _), m in kept])
    common_annotations = _common([{**notes, **m.annotations} for (_, _, notes), m in kept])
    items = items_annotation([m.name for m in members], what=f"indexed Job {name}")
    common_env, varying = _varying_env(members)
    job = clean_template(first.template)
    job["metadata"].update(name=name, labels={}, annotations={})
    job["spec"]["template"]["metadata"]["labels"] = pod_labels
    shared = first.model_copy(update={"labels": common_labels, "annotations": common_annotations})
    apply_spec(job, shared, env=common_env)
    for target in (job["metadata"], job["spec"]["template"]["metadata"]):
        target["labels"].update(labels or {})
    job["metadata"]["annotations"][ITEMS_ANNOTATION] = items
    container = first_container(job)
    if varying:
        _wrap_command(container, varying)
    spec = job["spec"]
    spec.pop("backoffLimit", None)
    spec.pop("activeDeadlineSeconds", None)
    spec.update(
        completionMode="Indexed",
        completions=len(members),
        parallelism=min(parallelism or spec.get("parallelism") or len(members), len(members)),
        backoffLimitPerIndex=first.backoff_limit,
        podFailurePolicy={
            "rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [137]}}]
        },
    )
    spec["template"]["spec"]["restartPolicy"] = "Never"
    return job


def items_annotation(names: list[str], *, what: str) -> str:
    """The ``sluice/items`` value for ``names``, or one line if it is too big for a Job."""
    items = json.dumps(names, separators=(",", ":"))
    if len(items) > MAX_ITEMS_BYTES:
        raise SluiceInputError(
            f"{what}: {len(names)} items do not fit one Indexed Job's annotations"
            f" ({len(items):,} of {MAX_ITEMS_BYTES:,} bytes); use smaller chunks"
        )
    return items


def _common(mappings: list[dict[str, str]]) -> dict[str, str]:
    """The entries every mapping shares."""
    return {k: v for k, v in mappings[0].items() if all(m.get(k) == v for m in mappings[1:])}


def _wrap_command(container: dict[str, Any], varying: dict[str, list[str]]) -> None:
    argv = list(container.get("command") or []) + list(container.pop("args", None) or [])
    exports = "".join(
        f'{key}=$(printf "%s\\n" "${key}_MAPPING" | sluice_pick); export {key}; ' for key in varying
    )
    container["command"] = ["/bin/sh", "-c", PRELUDE + exports + 'exec "$@"', "sluice-index", *argv]
    env = [e for e in container.get("env") or [] if e.get("name") not in varying]
    container["env"] = env
    set_env(container, {f"{key}_MAPPING": "\n".join(values) for key, values in varying.items()})
    if not any(e.get("name") == INDEX_ENV for e in container["env"]):
        container["env"].append(
            {
                "name": INDEX_ENV,
                "valueFrom": {"fieldRef": {"fieldPath": INDEX_FIELD}},
            }
        )


def items_of(job: dict[str, Any]) -> list[str] | None:
    """The spec names of an Indexed Job created by Sluice, by completion index."""
    text = ((job.get("metadata") or {}).get("annotations") or {}).get(ITEMS_ANNOTATION)
    return json.loads(text) if text else None
