"""Choose a backend by name; flows never know which one they got."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports the enums below; the backends load on first use
    from sluice.backends.base import Backend


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

            from sluice.server import load_block

            credentials = load_block(
                KubernetesCredentials, kubernetes_credentials, "--kubernetes-credentials"
            )
            access = ClusterAccess.from_credentials(credentials)
        return KubernetesBackend(
            namespace=namespace,
            mode=kubernetes_mode.value,
            access=access,
            dry_run=server_dry_run,
            parallelism=parallelism,
        )
    from sluice.backends.nomad import NomadBackend, NomadSettings
    from sluice.backends.nomad.specs import SPEC_DIR

    spec_dir = Path(nomad_spec_dir) if nomad_spec_dir else SPEC_DIR
    if nomad_cluster:
        from sluice.blocks.nomad import NomadCluster
        from sluice.server import load_block

        cluster = load_block(NomadCluster, nomad_cluster, "--nomad_block")
        return NomadBackend.from_block(cluster, spec_dir=spec_dir)
    return NomadBackend(NomadSettings.from_environment(), spec_dir=spec_dir)
