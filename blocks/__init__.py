"""Prefect Block classes (``prefect block register -m sluice.blocks``)."""

from sluice.blocks.kubernetes import KubernetesTarget
from sluice.blocks.ledger import LedgerSettings
from sluice.blocks.nomad import NomadCluster

__all__ = ["KubernetesTarget", "LedgerSettings", "NomadCluster"]
