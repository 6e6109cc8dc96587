"""Fixtures for the ChunkedGraph tests: the 4x4x4 example dataset, in-process Prefect settings."""

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


@pytest.fixture
def prefect_client_settings(prefect_api: str):
    """Make this process's Prefect (every thread included) use the session server.

    Prefect reads its settings when first imported (here at collection time, before
    ``prefect_api`` set ``PREFECT_API_URL``); without a refresh, in-process flows and the
    task runners' threads fall back to a temporary ephemeral server.
    """
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()
    yield prefect_api
    refresh_global_settings_context()
