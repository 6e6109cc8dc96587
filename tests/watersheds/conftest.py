"""Fixtures for the watershed batch: the seed-style example, batch roots, a moto S3 server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "watersheds"
SEED_TEMPLATE = "{slug(properties['HucName'])}-{zfill(one_based_index, 3)}"
SEED_RUNIDS = ["Blue-Creek-001", "Cedar-Grove-002", "Juniper-Basin-003"]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of examples/watersheds (base project, GeoJSON, stand-in stages)."""
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.fixture
def batch_root(tmp_path: Path, sluice_home: Path) -> Path:
    """Where this test's batches live (with a private SLUICE_HOME, hence ledger)."""
    return tmp_path / "batches"
