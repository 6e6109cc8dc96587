"""The ``KubernetesTarget`` block: which cluster, namespace and mode Sluice's Jobs use."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from prefect_kubernetes.credentials import KubernetesCredentials
from pydantic import Field

from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend


class KubernetesTarget(Block):
    """A Kubernetes namespace to run Sluice Jobs in, and how to reach it.

    Connection: ``credentials`` (prefect-kubernetes' ``KubernetesCredentials`` holding a
    ``KubernetesClusterConfig``) wins; else ``kubeconfig_path``/``context``; else
    ``in_cluster`` (the pod's service account); with none set, ``$KUBECONFIG`` /
    ``~/.kube/config`` or the service account, whichever exists.
    """

    _block_type_name = "Sluice Kubernetes Target"
    _description = "Cluster connection, namespace and Job mode for Sluice's Kubernetes backend."

    namespace: str = Field(default="default", description="Namespace of the Jobs.")
    mode: Literal["per-index", "indexed"] = Field(
        default="per-index",
        description="per-index: one Job per item; indexed: one Indexed Job per chunk and tier.",
    )
    parallelism: int | None = Field(
        default=None, gt=0, description="Pods at once per Indexed Job (indexed mode)."
    )
    credentials: KubernetesCredentials | None = Field(
        default=None, description="prefect-kubernetes credentials (a cluster config block)."
    )
    kubeconfig_path: str | None = Field(default=None, description="A kubeconfig file.")
    context: str | None = Field(default=None, description="The kubeconfig context to use.")
    in_cluster: bool = Field(default=False, description="Use the pod's service account.")

    def access(self) -> ClusterAccess:
        if self.credentials is not None and self.credentials.cluster_config is not None:
            return ClusterAccess.from_credentials(self.credentials)
        return ClusterAccess(
            kubeconfig=self.kubeconfig_path, context=self.context, in_cluster=self.in_cluster
        )

    def backend(self, *, dry_run: bool = False) -> KubernetesBackend:
        """A ready ``KubernetesBackend`` (call its ``preflight()`` before planning work)."""
        return KubernetesBackend(
            self.namespace,
            mode=self.mode,
            access=self.access(),
            dry_run=dry_run,
            parallelism=self.parallelism,
        )
