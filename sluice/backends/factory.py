"""Choose a backend by name; flows never know which one they got."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from sluice.backends.base import Backend


class BackendKind(StrEnum):
    """Where jobs run."""

    LOCAL = "local"
    KUBERNETES = "kubernetes"
    NOMAD = "nomad"


def create_backend(
    kind: BackendKind | str,
    *,
    parallelism: int | None = None,
    namespace: str | None = None,
    log_dir: Path | None = None,
    server_dry_run: bool = False,
) -> Backend:
    """A ready backend of ``kind`` (connection settings come from blocks/environment)."""
    kind = BackendKind(kind)
    if kind is BackendKind.LOCAL:
        from sluice.backends.local import LocalBackend

        return LocalBackend(parallelism=parallelism, log_dir=log_dir)
    if kind is BackendKind.KUBERNETES:
        from sluice.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(namespace=namespace, dry_run=server_dry_run)
    from sluice.backends.nomad import NomadBackend

    return NomadBackend()
