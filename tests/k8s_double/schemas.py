"""Strict schema validation of every object the double receives, as a real API server would.

The schemas are kubernetes-validate's (generated from each release's OpenAPI, ``strict``:
unknown fields are errors). An object must validate for every Kubernetes version in
``VERSIONS`` (the ones users run); the first failures become a 422 ``Invalid`` Status with
one cause per field, like the API server's. Validators are built once per (version, kind).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
from kubernetes_validate.utils import SchemaNotFoundError, all_versions, schema_contents
from referencing import Registry, Resource

from tests.k8s_double.status import ApiError

Obj = dict[str, Any]
VERSIONS = tuple(
    v
    for v in dict.fromkeys(re.sub(r"^(\d+\.\d+).*", r"\1", v) for v in all_versions())
    if (1, 30) <= tuple(int(p) for p in v.split(".")) <= (1, 37)
)


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> jsonschema.Validator:
    """kubernetes-validate's strict schema for one kind at one version, compiled once."""
    folder = f"kubernetes-json-schema/v{version}.0-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        raise SchemaNotFoundError(kind=kind, version=version, api_version=api_version) from None
    definitions = schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _field(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "<root>"


def validate(obj: Obj, kind: str, api_version: str, group: str, name: str) -> None:
    """Raise 422 Invalid unless ``obj`` (a ``kind`` of ``api_version``) passes every version."""
    body = {"apiVersion": api_version, "kind": kind, **obj}
    for version in VERSIONS:
        errors = sorted(
            _validator(version, kind, api_version).iter_errors(body), key=lambda e: list(e.path)
        )
        if errors:
            causes = [
                (_field(list(e.absolute_path)), f"{e.message} (Kubernetes {version} schema)")
                for e in errors[:5]
            ]
            raise ApiError.invalid(kind, group, name, causes)
