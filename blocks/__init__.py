"""Prefect Block classes (``prefect block register -m blocks``)."""

from blocks.nomad import NomadCluster

__all__ = ["NomadCluster"]
