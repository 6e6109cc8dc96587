"""What the API server does to a Job on create: validation (422) and defaulting."""

from __future__ import annotations

import re
from typing import Any

from tests.k8s_double import clock
from tests.k8s_double.status import ApiError

Obj = dict[str, Any]
MAX_INT32 = 2**31 - 1
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
ACTIONS = ("FailJob", "FailIndex", "Ignore", "Count")


def prepare(job: Obj, namespace: str) -> Obj:
    """Validate and default a Job being created; returns it ready to store."""
    if job.get("kind", "Job") != "Job" or job.get("apiVersion", "batch/v1") != "batch/v1":
        raise ApiError.bad_request(
            f"the API version in the data ({job.get('apiVersion')}) does not match the expected "
            "API version (batch/v1)"
        )
    meta = job.setdefault("metadata", {})
    if meta.get("namespace") not in (None, namespace):
        raise ApiError.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = namespace
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + clock.name_suffix()
    name = meta.get("name") or ""
    _validate(job, name)
    uid = clock.new_uid()
    meta.update(uid=uid, creationTimestamp=clock.now(), generation=1)
    meta.pop("resourceVersion", None)
    job["apiVersion"], job["kind"] = "batch/v1", "Job"
    spec = job["spec"]
    _default_spec(spec)
    template_meta = spec["template"].setdefault("metadata", {})
    labels = template_meta.setdefault("labels", {})
    for key in UID_LABELS:
        labels[key] = uid
    for key in NAME_LABELS:
        labels[key] = name
    spec["selector"] = {"matchLabels": {UID_LABELS[0]: uid}}
    if not meta.get("labels"):
        meta["labels"] = dict(labels)
    job["status"] = {}
    return job


def _validate(job: Obj, name: str) -> None:
    causes: list[tuple[str, str]] = []
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif not _SUBDOMAIN.match(name) or len(name) > 63:
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain of at most 63 '
                "characters must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character",
            )
        )
    spec = job.get("spec")
    if not isinstance(spec, dict):
        causes.append(("spec.template.spec.containers", "Required value"))
        raise ApiError.invalid("Job", "batch", name, causes)
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    if not containers:
        causes.append(("spec.template.spec.containers", "Required value"))
    for i, container in enumerate(containers):
        if not container.get("name"):
            causes.append((f"spec.template.spec.containers[{i}].name", "Required value"))
        if not container.get("image"):
            causes.append((f"spec.template.spec.containers[{i}].image", "Required value"))
    restart = pod.get("restartPolicy", "Always")
    if restart not in ("OnFailure", "Never"):
        causes.append(
            (
                "spec.template.spec.restartPolicy",
                'Required value: valid values: "OnFailure", "Never"'
                if restart == "Always"
                else f'Unsupported value: "{restart}": supported values: "OnFailure", "Never"',
            )
        )
    for field in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append(
                (f"spec.{field}", f"Invalid value: {value}: must be greater than or equal to 0")
            )
    if spec.get("selector") and not spec.get("manualSelector"):
        causes.append(
            (
                "spec.selector",
                "Invalid value: {}: `selector` will be auto-generated".format(spec["selector"]),
            )
        )
    for key in UID_LABELS:
        value = (template.get("metadata") or {}).get("labels", {}).get(key)
        if value is not None:
            causes.append(
                (
                    "spec.template.metadata.labels",
                    f"Invalid value: {{{key!r}: {value!r}}}: `selector` does not match "
                    "template `labels`",
                )
            )
            break
    indexed = spec.get("completionMode", "NonIndexed") == "Indexed"
    if spec.get("completionMode", "NonIndexed") not in ("Indexed", "NonIndexed"):
        causes.append(
            (
                "spec.completionMode",
                f'Unsupported value: "{spec["completionMode"]}": supported values: '
                '"NonIndexed", "Indexed"',
            )
        )
    if indexed and spec.get("completions") is None:
        causes.append(("spec.completions", "Required value: when completion mode is Indexed"))
    if spec.get("backoffLimitPerIndex") is not None and not indexed:
        causes.append(
            (
                "spec.backoffLimitPerIndex",
                "Forbidden: requires indexed completion mode",
            )
        )
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        causes.append(
            ("spec.maxFailedIndexes", "Required value: when maxFailedIndexes is specified")
        )
    policy = spec.get("podFailurePolicy")
    if policy is not None:
        if restart != "Never":
            causes.append(
                (
                    "spec.podFailurePolicy",
                    'Invalid value: "": only "Never" is supported when podFailurePolicy '
                    "is specified",
                )
            )
        for i, rule in enumerate(policy.get("rules") or []):
            field = f"spec.podFailurePolicy.rules[{i}]"
            action = rule.get("action")
            if action not in ACTIONS:
                causes.append(
                    (
                        f"{field}.action",
                        f'Unsupported value: "{action}": supported values: '
                        + ", ".join(f'"{a}"' for a in ACTIONS),
                    )
                )
            elif action == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
                causes.append(
                    (
                        f"{field}.action",
                        'Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set',
                    )
                )
            has_codes = rule.get("onExitCodes") is not None
            has_conditions = bool(rule.get("onPodConditions"))
            if has_codes == has_conditions:
                causes.append(
                    (
                        field,
                        "Invalid value: specifying one of OnExitCodes and OnPodConditions "
                        "is required",
                    )
                )
            if has_codes:
                codes = rule["onExitCodes"]
                if codes.get("operator") not in ("In", "NotIn"):
                    causes.append(
                        (
                            f"{field}.onExitCodes.operator",
                            f'Unsupported value: "{codes.get("operator")}": supported values: '
                            '"In", "NotIn"',
                        )
                    )
                if not codes.get("values"):
                    causes.append((f"{field}.onExitCodes.values", "Required value"))
    if causes:
        raise ApiError.invalid("Job", "batch", name, causes)


def _default_spec(spec: Obj) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault(
        "podReplacementPolicy",
        "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed",
    )
    pod = spec["template"]["spec"]
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("schedulerName", "default-scheduler")
    pod.setdefault("securityContext", {})
    for container in pod["containers"]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        image = container["image"]
        tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
        container.setdefault("imagePullPolicy", "IfNotPresent" if tagged else "Always")
        resources = container.setdefault("resources", {})
        limits = resources.get("limits") or {}
        if limits:
            requests = resources.setdefault("requests", {})
            for resource, quantity in limits.items():
                requests.setdefault(resource, quantity)
    for rule in (spec.get("podFailurePolicy") or {}).get("rules") or []:
        for condition in rule.get("onPodConditions") or []:
            condition.setdefault("status", "True")


def default_update(wanted: Obj, current: Obj) -> None:
    """Default a patched or replaced Job as the API does after decoding any write."""
    spec = wanted.get("spec")
    if not isinstance(spec, dict) or not (spec.get("template") or {}).get("spec", {}).get(
        "containers"
    ):
        return
    spec.setdefault("selector", current["spec"]["selector"])
    _default_spec(spec)


def immutable_change(old: Obj, new: Obj) -> list[tuple[str, str]]:
    """The field errors an update of an existing Job's immutable fields gets."""
    causes = []
    for field in ("template", "selector", "completionMode", "podFailurePolicy"):
        if old["spec"].get(field) != new.get("spec", {}).get(field):
            causes.append((f"spec.{field}", "Invalid value: field is immutable"))
    return causes
