"""The ``NomadCluster`` block: where a Nomad cluster is and the ACL token to use."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from sluice.backends.nomad.client import NomadSettings


class NomadCluster(Block):
    """A Nomad cluster: agent address, region, namespace and ACL token (a secret)."""

    _block_type_name = "Nomad Cluster"
    _description = "Address, region, namespace and ACL token of a Nomad cluster for Sluice."

    address: str = Field(
        default="http://127.0.0.1:4646", description="Nomad HTTP API address (NOMAD_ADDR)."
    )
    region: str | None = Field(default=None, description="Nomad region (default: the agent's).")
    namespace: str | None = Field(default=None, description="Nomad namespace (default: default).")
    token: SecretStr | None = Field(default=None, description="ACL token secret ID.")

    def settings(self) -> NomadSettings:
        """Connection settings for ``NomadBackend``/``NomadApi`` (the token revealed only here)."""
        return NomadSettings(
            address=self.address,
            region=self.region,
            namespace=self.namespace,
            token=self.token.get_secret_value() if self.token else None,
        )
