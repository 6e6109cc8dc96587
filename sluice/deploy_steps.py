"""Prefect deployment steps for Sluice's ``deployments/prefect.yaml``."""

from __future__ import annotations

import os
from pathlib import Path


def work_in_project() -> dict[str, str]:
    """Pull step: run flows from the Sluice checkout the worker has installed.

    Entrypoints are module paths (``sluice.flows.karabo.karabo_simulation``), so the
    code loads from the installed package wherever the worker runs; the working
    directory only decides where relative paths (``reports/...``) land. In an
    editable install that is the project root; otherwise the current directory.
    """
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file():
        os.chdir(root)
    return {"directory": os.getcwd()}


def kubernetes_namespace(kustomization: str) -> dict[str, str]:
    """Build step: the one namespace of the cluster deployments, from ``kustomization``.

    ``infra/kubernetes/kustomization.yaml``'s ``namespace`` places the RBAC (and the Karabo
    scratch volume); the cluster deployments read it here so that their flow pods (the work
    pool's ``namespace`` job variable) and the Jobs their flows create land in the same one.
    """
    import yaml

    path = Path(kustomization)
    try:
        namespace = yaml.safe_load(path.read_text())["namespace"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: no namespace to deploy to ({error})") from None
    if not isinstance(namespace, str) or not namespace:
        raise ValueError(f"{path}: namespace must be a non-empty string")
    return {"namespace": namespace}
