"""Fixtures for the watershed batch: the seed-style example, batch roots, a moto S3 server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from tests.conftest import free_port

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


@pytest.fixture(scope="session")
def moto_s3() -> str:
    """A real moto S3 server (``moto_server``); returns its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    @retry(
        retry=retry_if_exception_type(httpx.HTTPError),
        stop=stop_after_delay(30),
        wait=wait_fixed(0.1),
    )
    def ready() -> None:
        httpx.get(url, timeout=1.0)

    ready()
    yield url
    process.terminate()
    process.wait()
