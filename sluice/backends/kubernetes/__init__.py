"""The Kubernetes backend: per-index Jobs or Indexed Jobs, created idempotently, watched."""

from sluice.backends.kubernetes.backend import KubernetesBackend
from sluice.backends.kubernetes.client import ClusterAccess, RbacDenied

__all__ = ["ClusterAccess", "KubernetesBackend", "RbacDenied"]
