"""Prefect Block classes (``prefect block register -m sluice.blocks``).

Each class is imported when first named, so that importing one block module (the flows'
``sluice.blocks.storage``) does not import every backend's client library (the Kubernetes
block alone costs ~60 MiB of imports). ``dir()`` lists them, so Prefect's ``block
register -m sluice.blocks`` (``inspect.getmembers``) still finds every one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluice.blocks.kubernetes import KubernetesTarget
    from sluice.blocks.ledger import LedgerSettings
    from sluice.blocks.nomad import NomadCluster

_MODULES = {
    "KubernetesTarget": "sluice.blocks.kubernetes",
    "LedgerSettings": "sluice.blocks.ledger",
    "NomadCluster": "sluice.blocks.nomad",
}

__all__ = ["KubernetesTarget", "LedgerSettings", "NomadCluster"]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULES])
