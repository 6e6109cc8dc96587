"""The Job template that drives every backend, loaded from a file or a live Job."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from sluice.backends.expansion import expand_env
from sluice.backends.kubernetes.manifests import clean_template, first_container
from sluice.errors import SluiceInputError
from sluice.inputs import read_text_file
from sluice.quantity import parse_cpu, parse_memory

MAX_TEMPLATE_BYTES = 1024 * 1024  # the API server's object size limit is 1.5 MiB
MAX_TEMPLATE_NODES = 100_000  # after YAML aliases are expanded


def load_template_file(path: str | Path) -> dict[str, Any]:
    """A Job manifest from YAML, validated (kind Job, at least one container with a command)."""
    text = read_text_file(path, what="--template-path", max_bytes=MAX_TEMPLATE_BYTES)
    source = f"--template-path {path}"
    try:
        return validate_template(yaml.safe_load(text), source=source)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SluiceInputError(f"{source}: {problem}") from None
    except RecursionError:
        raise SluiceInputError(f"{source}: nested too deeply") from None


def load_source_job(name: str, namespace: str) -> dict[str, Any]:
    """A live Job read through the official client, cleaned of server-set fields."""
    from kubernetes import client

    from sluice.backends.kubernetes import ClusterAccess

    api_client = client.ApiClient(ClusterAccess().configuration())
    api = client.BatchV1Api(api_client)
    try:
        job = api.read_namespaced_job(name, namespace)
    except client.ApiException as exc:
        raise SluiceInputError(
            f"--source-job {name}: cannot read it in namespace {namespace}"
            f" ({exc.status} {exc.reason})"
        ) from None
    document = api_client.sanitize_for_serialization(job)
    return validate_template(document, source=f"--source-job {name}")


def validate_template(document: Any, *, source: str) -> dict[str, Any]:
    """The cleaned Job, or one line naming the first field of the wrong shape."""
    if _expanded_size(document, {}) > MAX_TEMPLATE_NODES:
        raise SluiceInputError(
            f"{source}: more than {MAX_TEMPLATE_NODES:,} values once YAML aliases are expanded"
        )
    if not isinstance(document, dict) or document.get("kind") != "Job":
        raise SluiceInputError(f"{source}: not a Kubernetes Job (kind: Job)")
    template = _mapping(_mapping(document, "spec", source), "template", source, "spec.")
    pod_spec = _mapping(template, "spec", source, "spec.template.")
    containers = pod_spec.get("containers") or []
    if not isinstance(containers, list) or not containers:
        raise SluiceInputError(f"{source}: the Job has no containers")
    for number, container in enumerate(containers):
        _check_container(container, f"{source}: spec.template.spec.containers[{number}]")
    if not (containers[0].get("command") or containers[0].get("args")):
        raise SluiceInputError(f"{source}: the first container has no command or args")
    for section in ("metadata", "spec"):
        if not isinstance(document.get(section) or {}, dict):
            raise SluiceInputError(f"{source}: {section} must be a mapping")
    labels = (document.get("metadata") or {}).get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise SluiceInputError(f"{source}: metadata.labels must map names to strings")
    return clean_template(document)


def _mapping(parent: dict, key: str, source: str, prefix: str = "") -> dict:
    value = parent.get(key) or {}
    if not isinstance(value, dict):
        raise SluiceInputError(f"{source}: {prefix}{key} must be a mapping")
    return value


def _check_container(container: Any, where: str) -> None:
    if not isinstance(container, dict):
        raise SluiceInputError(f"{where} must be a mapping")
    for key in ("command", "args"):
        value = container.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise SluiceInputError(f"{where}.{key} must be a list of strings")
    for key in ("name", "image", "workingDir"):
        if key in container and not isinstance(container[key], str):
            raise SluiceInputError(f"{where}.{key} must be a string")
    env = container.get("env") or []
    if not isinstance(env, list):
        raise SluiceInputError(f"{where}.env must be a list")
    for entry in env:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise SluiceInputError(f"{where}.env entries need a string name")
        if "value" in entry and not isinstance(entry["value"], str):
            raise SluiceInputError(f"{where}.env {entry['name'][:40]}: value must be a string")
    resources = container.get("resources") or {}
    if not isinstance(resources, dict) or not all(
        isinstance(section or {}, dict) for section in resources.values()
    ):
        raise SluiceInputError(f"{where}.resources must map requests/limits to quantities")
    for kind, section in resources.items():
        for key, parse in (("memory", parse_memory), ("cpu", parse_cpu)):
            if key in (section or {}):
                parse(section[key], what=f"{where}.resources.{kind}.{key}")


def _expanded_size(node: Any, seen: dict[int, int]) -> int:
    """How many values ``node`` holds with every shared (aliased) part counted each time."""
    if not isinstance(node, dict | list):
        return 1
    if id(node) in seen:
        return seen[id(node)]
    seen[id(node)] = MAX_TEMPLATE_NODES + 1  # a cycle counts as too big
    children = node.values() if isinstance(node, dict) else node
    total = 1 + sum(_expanded_size(child, seen) for child in children)
    seen[id(node)] = total
    return total


def container_argv(template: dict[str, Any]) -> list[str]:
    """The first container's command + args, as a process would run them."""
    container = first_container(template)
    return [*(container.get("command") or []), *(container.get("args") or [])]


def container_env(template: dict[str, Any]) -> dict[str, str]:
    """The first container's literal env values, ``$(VAR)`` expanded as the kubelet does
    (``valueFrom`` entries cannot run locally)."""
    entries = first_container(template).get("env") or []
    return expand_env((e["name"], str(e["value"])) for e in entries if "value" in e)


def workload_fingerprint(template: dict[str, Any]) -> str:
    """Identifies 'the same template' across sweeps for memory history."""
    container = first_container(template)
    essence = {
        "image": container.get("image"),
        "argv": container_argv(template),
        "env": sorted(
            (e["name"], e.get("value")) for e in container.get("env") or [] if e["name"] != "INDEX"
        ),
    }
    digest = hashlib.sha256(json.dumps(essence, sort_keys=True).encode()).hexdigest()
    return f"sweep:{digest[:16]}"
