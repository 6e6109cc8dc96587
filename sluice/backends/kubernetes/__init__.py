"""The Kubernetes backend: per-index Jobs or Indexed Jobs, created idempotently, watched.

The backend and its client load on first use, so importing a pure submodule (such as
``manifests``) does not import the Kubernetes client library (a second of CLI start-up).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.backends.kubernetes.backend import KubernetesBackend
    from sluice.backends.kubernetes.client import ClusterAccess, RbacDenied

__all__ = ["ClusterAccess", "KubernetesBackend", "RbacDenied"]
_HOMES = {"KubernetesBackend": "backend", "ClusterAccess": "client", "RbacDenied": "client"}


def __getattr__(name: str) -> object:
    if name in _HOMES:
        return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
