"""Fixtures for the Karabo flow: tiny settings, ingestor areas, a moto S3 server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from tests.conftest import free_port

# 2 channels, 3 time stamps, 16x16 pixels: products of a few hundred KiB.
TINY = {
    "start_freq_hz": 1.0e9,
    "end_freq_hz": 1.0e9 + 2 * 1.0e6,
    "freq_inc_hz": 1.0e6,
    "num_time_stamps": 3,
    "imaging_npixel": 16,
}


@pytest.fixture
def areas(tmp_path: Path) -> dict[str, Path]:
    """Empty ingestor areas on local disk."""
    made = {name: tmp_path / "ingest" / name for name in ("staging", "processed", "failed")}
    for path in made.values():
        path.mkdir(parents=True)
    return made


@retry(
    retry=retry_if_exception_type(httpx.HTTPError), stop=stop_after_delay(30), wait=wait_fixed(0.1)
)
def _wait_healthy(url: str) -> None:
    httpx.get(f"{url}/moto-api/", timeout=1.0).raise_for_status()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A real moto S3 server (server mode) on a free port."""
    port = free_port()
    binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def s3_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3's default chain pointed at moto (also inherited by child processes)."""
    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3.client("s3").create_bucket(Bucket="ingest-area")
    return "s3://ingest-area"
