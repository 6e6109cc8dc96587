"""Choose a backend by name; flows never know which one they got."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports the enums below; the backends load on first use
    from prefect_kubernetes.credentials import KubernetesCredentials

    from sluice.backends.base import Backend
    from sluice.backends.nomad import NomadSettings


class BackendKind(StrEnum):
    """Where jobs run."""

    LOCAL = "local"
    KUBERNETES = "kubernetes"
    NOMAD = "nomad"


class KubernetesMode(StrEnum):
    """How the Kubernetes backend maps jobs to Job objects."""

    PER_INDEX = "per-index"
    INDEXED = "indexed"


def create_backend(
    kind: BackendKind | str,
    *,
    parallelism: int | None = None,
    namespace: str | None = None,
    log_dir: Path | None = None,
    server_dry_run: bool = False,
    kubernetes_mode: KubernetesMode = KubernetesMode.PER_INDEX,
    kubernetes_credentials: KubernetesCredentials | None = None,
    nomad: NomadSettings | None = None,
    nomad_spec_dir: Path | None = None,
) -> Backend:
    """A ready backend of ``kind``, from plain settings the flow resolved from its blocks.

    Kubernetes: a prefect-kubernetes ``KubernetesCredentials`` (its cluster config), else
    the kubeconfig or the pod's service account. Nomad: ``nomad`` settings (a
    ``NomadCluster`` block's), else the nomad CLI's ``NOMAD_*`` environment variables.
    """
    kind = BackendKind(kind)
    if kind is BackendKind.LOCAL:
        from sluice.backends.local import LocalBackend

        return LocalBackend(parallelism=parallelism, log_dir=log_dir)
    if kind is BackendKind.KUBERNETES:
        from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend

        return KubernetesBackend(
            namespace=namespace,
            mode=kubernetes_mode.value,
            access=ClusterAccess.from_credentials(kubernetes_credentials),
            dry_run=server_dry_run,
            parallelism=parallelism,
        )
    from sluice.backends.nomad import NomadBackend, NomadSettings

    settings = nomad or NomadSettings.from_environment()
    if nomad_spec_dir:
        return NomadBackend(settings, spec_dir=Path(nomad_spec_dir))
    return NomadBackend(settings)
