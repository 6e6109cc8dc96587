"""Fixtures for the ChunkedGraph tests: the 4x4x4 example dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chunkedgraph"
WORK = Path(__file__).resolve().parent / "cg_work.py"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A copy of examples/chunkedgraph (4 x 4 x 4 layer-2 chunks) in a private folder."""
    folder = tmp_path / "dataset"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder / "dataset.yml"
