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


def load_template_file(path: str | Path) -> dict[str, Any]:
    """A Job manifest from YAML, validated (kind Job, at least one container with a command)."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise SluiceInputError(f"--template-path {path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise SluiceInputError(f"--template-path {path}: {problem}") from None
    return validate_template(document, source=f"--template-path {path}")


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
    if not isinstance(document, dict) or document.get("kind") != "Job":
        raise SluiceInputError(f"{source}: not a Kubernetes Job (kind: Job)")
    containers = (
        document.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    )
    if not containers or not isinstance(containers[0], dict):
        raise SluiceInputError(f"{source}: the Job has no containers")
    if not (containers[0].get("command") or containers[0].get("args")):
        raise SluiceInputError(f"{source}: the first container has no command or args")
    return clean_template(document)


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
