"""Fixtures for the ChunkedGraph tests: the 4x4x4 example dataset, a local GCS emulator."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, start_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chunkedgraph"
WORK = Path(__file__).resolve().parent / "cg_work.py"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A copy of examples/chunkedgraph (4 x 4 x 4 layer-2 chunks) in a private folder."""
    folder = tmp_path / "dataset"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder / "dataset.yml"


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real GCS JSON API: ``gcp-storage-emulator`` (in memory) on a free loopback port.

    Its URL; gcsfs is pointed at it with ``STORAGE_EMULATOR_HOST``. Bucket ``ws`` exists.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = Path(sys.executable).with_name("gcp-storage-emulator")
    argv = [str(emulator), "start", "-H", "127.0.0.1", "--port", str(port), "--in-memory"]
    process = start_server(
        [*argv, "--default-bucket", "ws", "-q"],
        url,
        tmp_path_factory.mktemp("gcs") / "gcs.log",
    )
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def on_gcs_emulator(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``STORAGE_EMULATOR_HOST`` set for this test (as a user of an emulator sets it)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    return gcs_emulator
