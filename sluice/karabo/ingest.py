"""Hand products to the ingestor and verify what it did with them.

Staging order: the product first (under a temporary name, then renamed), its
``.meta`` last. The ingestor keys on ``*.meta``, so by the time it sees one the
product it describes is complete. On S3 each object appears only when its
upload completes, and the ``.meta`` is uploaded after the product's objects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sluice.karabo.areas import Area
from sluice.karabo.meta import META_SUFFIX, build_meta, problem, render
from sluice.karabo.settings import KaraboSettings, Product


class Fate(StrEnum):
    """Where the ingestor put a product."""

    PROCESSED = "processed"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True)
class Staged:
    """One product handed to the ingestor (``rel`` = ``<namespace>/<file>`` in every area)."""

    product: Product
    rel: str

    @property
    def meta_rel(self) -> str:
        return self.rel + META_SUFFIX


def targets(settings: KaraboSettings) -> list[Staged]:
    return [
        Staged(p, f"{settings.rucio_namespace}/{settings.file_name(p)}") for p in settings.selected
    ]


def fate(item: Staged, processed: Area, failed: Area) -> Fate:
    """The ingestor moves the ``.meta`` last, so its arrival means the product is done."""
    if processed.has(item.meta_rel):
        return Fate.PROCESSED
    if failed.has(item.meta_rel) or failed.has(item.rel):
        return Fate.FAILED
    return Fate.PENDING


def meta_document(settings: KaraboSettings, product: Product, workdir: Path) -> bytes:
    """The workflow's own valid ``.meta`` (the real Karabo image writes one), else ours."""
    name = settings.file_name(product)
    own = workdir / settings.rucio_namespace / (name + META_SUFFIX)
    data = own.read_bytes() if own.is_file() else None
    if data is not None and problem(data, name) is None:
        return data
    return render(build_meta(settings, product))


def stage(settings: KaraboSettings, workdir: Path, staging: Area, items: list[Staged]) -> None:
    """Place each product and then its ``.meta`` into the staging area, atomically."""
    for item in items:
        source = workdir / item.rel
        if not source.exists():
            raise RuntimeError(f"the simulation did not produce {item.rel} in {workdir}")
        staging.put_path(item.rel, source)
        staging.put_bytes(item.meta_rel, meta_document(settings, item.product, workdir))


def wait_for_ingestor(
    items: list[Staged],
    processed: Area,
    failed: Area,
    *,
    timeout: float,
    poll_seconds: float = 1.0,
) -> dict[Staged, Fate]:
    """Each item's fate once all have one; ``PENDING`` for those still waiting at timeout."""
    deadline = time.monotonic() + timeout
    fates = {item: Fate.PENDING for item in items}
    while True:
        for item in items:
            if fates[item] is Fate.PENDING:
                fates[item] = fate(item, processed, failed)
        if Fate.PENDING not in fates.values() or time.monotonic() >= deadline:
            return fates
        time.sleep(poll_seconds)


def clean_staging(staging: Area, items: list[Staged]) -> None:
    """Remove whatever of ours is still in staging (the ingestor should have moved it all)."""
    for item in items:
        staging.remove(item.meta_rel)
        staging.remove(item.rel)
