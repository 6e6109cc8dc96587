"""Discovery documents (``/version``, ``/api``, ``/apis``, resource lists) and kubectl's Tables."""

from __future__ import annotations

import time
from typing import Any

from tests.k8s_double import clock

Obj = dict[str, Any]
VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-k8s-double",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _resource(name: str, kind: str, verbs: list[str], **extra: Any) -> Obj:
    singular = "" if "/" in name else kind.lower()
    return {
        "name": name,
        "singularName": singular,
        "namespaced": True,
        "kind": kind,
        "verbs": verbs,
        **extra,
    }


def api_versions(address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


BATCH_GROUP = {
    "name": "batch",
    "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
    "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"},
}
API_GROUPS = {"kind": "APIGroupList", "apiVersion": "v1", "groups": [BATCH_GROUP]}
CORE_V1 = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        {
            "name": "namespaces",
            "singularName": "namespace",
            "namespaced": False,
            "kind": "Namespace",
            "verbs": ["get", "list"],
            "shortNames": ["ns"],
        },
        _resource("pods", "Pod", _ALL_VERBS, shortNames=["po"], categories=["all"]),
        _resource("pods/log", "Pod", ["get"]),
        _resource("pods/status", "Pod", ["get", "patch", "update"]),
    ],
}
BATCH_V1 = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "batch/v1",
    "resources": [
        _resource("jobs", "Job", _ALL_VERBS, categories=["all"]),
        _resource("jobs/status", "Job", ["get", "patch", "update"]),
    ],
}


def namespace(name: str) -> Obj:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": f"namespace-{name}",
            "resourceVersion": "1",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def table(resource: str, items: list[Obj], resource_version: str) -> Obj:
    """The server-side printing kubectl get asks for (``Accept: ...;as=Table``)."""
    columns, cells = (
        (_JOB_COLUMNS, _job_cells) if resource == "jobs" else (_POD_COLUMNS, _pod_cells)
    )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}
            for name, kind, fmt, priority in columns
        ],
        "rows": [
            {
                "cells": cells(obj),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
            for obj in items
        ],
    }


_JOB_COLUMNS = [
    ("Name", "string", "name", 0),
    ("Status", "string", "", 0),
    ("Completions", "string", "", 0),
    ("Duration", "string", "", 0),
    ("Age", "string", "", 0),
    ("Containers", "string", "", 1),
    ("Images", "string", "", 1),
    ("Selector", "string", "", 1),
]
_POD_COLUMNS = [
    ("Name", "string", "name", 0),
    ("Ready", "string", "", 0),
    ("Status", "string", "", 0),
    ("Restarts", "string", "", 0),
    ("Age", "string", "", 0),
    ("IP", "string", "", 1),
    ("Node", "string", "", 1),
]


def _age(stamp: str | None, until: float | None = None) -> str:
    if not stamp:
        return "<unknown>"
    seconds = int((until or time.time()) - clock.parse(stamp))
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds < 600 else f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60}m"


def _job_cells(job: Obj) -> list[Any]:
    spec, status = job["spec"], job.get("status", {})
    conditions = {c["type"] for c in status.get("conditions") or () if c["status"] == "True"}
    state = next(
        (
            c
            for c in ("Complete", "Failed", "FailureTarget", "SuccessCriteriaMet")
            if c in conditions
        ),
        "Suspended" if spec.get("suspend") else "Running",
    )
    completions = spec.get("completions")
    done = f"{status.get('succeeded', 0)}/{completions if completions is not None else 1}"
    start = status.get("startTime")
    end = status.get("completionTime")
    duration = _age(start, clock.parse(end) if end else None) if start else ""
    pod = spec["template"]["spec"]
    selector = ",".join(f"{k}={v}" for k, v in spec["selector"]["matchLabels"].items())
    return [
        job["metadata"]["name"],
        state,
        done,
        duration,
        _age(job["metadata"].get("creationTimestamp")),
        ",".join(c["name"] for c in pod["containers"]),
        ",".join(c["image"] for c in pod["containers"]),
        selector,
    ]


def _pod_cells(pod: Obj) -> list[Any]:
    status = pod.get("status", {})
    containers = status.get("containerStatuses") or []
    ready = sum(1 for c in containers if c.get("ready"))
    shown = status.get("reason") or status.get("phase", "Pending")
    for container in containers:
        terminated = container.get("state", {}).get("terminated")
        if terminated and not status.get("reason"):
            shown = terminated.get("reason") or shown
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(pod['spec']['containers'])}",
        shown,
        "0",
        _age(pod["metadata"].get("creationTimestamp")),
        status.get("podIP", "<none>"),
        pod["spec"].get("nodeName", "<none>"),
    ]


def _openapi_paths(prefix: str, resource: str, group: str, kind: str) -> Obj:
    """Just enough OpenAPI v3 for kubectl to see that creates take ``fieldValidation``."""
    gvk = {"group": group, "version": "v1", "kind": kind}
    parameter = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}
    operation = {"parameters": [parameter], "x-kubernetes-group-version-kind": gvk}
    collection = f"/{prefix}/namespaces/{{namespace}}/{resource}"
    return {
        collection: {"post": {**operation, "x-kubernetes-action": "post"}},
        f"{collection}/{{name}}": {
            "put": {**operation, "x-kubernetes-action": "put"},
            "patch": {**operation, "x-kubernetes-action": "patch"},
        },
    }


def openapi_v3(prefix: str) -> Obj:
    if prefix == "api/v1":
        paths, schema = _openapi_paths(prefix, "pods", "", "Pod"), "io.k8s.api.core.v1.Pod"
        gvk = {"group": "", "version": "v1", "kind": "Pod"}
    else:
        paths, schema = _openapi_paths(prefix, "jobs", "batch", "Job"), "io.k8s.api.batch.v1.Job"
        gvk = {"group": "batch", "version": "v1", "kind": "Job"}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "paths": paths,
        "components": {
            "schemas": {schema: {"type": "object", "x-kubernetes-group-version-kind": [gvk]}}
        },
    }


OPENAPI_V3_ROOT = {
    "paths": {
        "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=k8s-double-core"},
        "apis/batch/v1": {"serverRelativeURL": "/openapi/v3/apis/batch/v1?hash=k8s-double-batch"},
    }
}
