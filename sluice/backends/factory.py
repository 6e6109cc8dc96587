"""Choose a backend by name; flows never know which one they got."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from sluice.backends.base import Backend
from sluice.errors import SluiceInputError


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
    kubernetes_credentials: str | None = None,
    nomad_cluster: str | None = None,
    nomad_spec_dir: Path | None = None,
) -> Backend:
    """A ready backend of ``kind``.

    Kubernetes connection settings come from a prefect-kubernetes
    ``KubernetesCredentials`` block when one is named, else from the kubeconfig
    or the pod's service account. Nomad's come from a ``NomadCluster`` block when
    one is named, else from the nomad CLI's ``NOMAD_*`` environment variables.
    """
    kind = BackendKind(kind)
    if kind is BackendKind.LOCAL:
        from sluice.backends.local import LocalBackend

        return LocalBackend(parallelism=parallelism, log_dir=log_dir)
    if kind is BackendKind.KUBERNETES:
        from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend

        access = ClusterAccess()
        if kubernetes_credentials:
            from prefect_kubernetes.credentials import KubernetesCredentials

            access = ClusterAccess.from_credentials(
                KubernetesCredentials.load(kubernetes_credentials)
            )
        return KubernetesBackend(
            namespace=namespace,
            mode=kubernetes_mode.value,
            access=access,
            dry_run=server_dry_run,
            parallelism=parallelism,
        )
    from sluice.backends.nomad import NomadBackend, NomadSettings

    options = {"spec_dir": Path(nomad_spec_dir)} if nomad_spec_dir else {}
    if nomad_cluster:
        from blocks.nomad import NomadCluster

        try:
            cluster = NomadCluster.load(nomad_cluster)
        except ValueError:
            raise SluiceInputError(f"--nomad_block {nomad_cluster!r}: no such block") from None
        return NomadBackend.from_block(cluster, **options)
    return NomadBackend(NomadSettings.from_environment(), **options)
