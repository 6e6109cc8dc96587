"""Prefect Block classes (``prefect block register -m blocks``)."""

from blocks.kubernetes import KubernetesTarget
from blocks.ledger import LedgerSettings
from blocks.nomad import NomadCluster

__all__ = ["KubernetesTarget", "LedgerSettings", "NomadCluster"]
