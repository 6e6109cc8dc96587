"""Nomad backend: parameterized jobs dispatched and followed through python-nomad."""

from sluice.backends.nomad.backend import NomadBackend
from sluice.backends.nomad.client import NomadApi, NomadSettings
from sluice.backends.nomad.purge import PurgeReport, purge_dispatched

__all__ = ["NomadApi", "NomadBackend", "NomadSettings", "PurgeReport", "purge_dispatched"]
