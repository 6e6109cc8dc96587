"""Fixtures for the Karabo flow: tiny settings, ingestor areas, a moto S3 server."""

from __future__ import annotations

from pathlib import Path

import boto3
import httpx
import pytest

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


@pytest.fixture
def s3_env(moto_s3: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3's default chain pointed at moto (also inherited by child processes)."""
    httpx.post(f"{moto_s3}/moto-api/reset").raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    boto3.client("s3").create_bucket(Bucket="ingest-area")
    return "s3://ingest-area"
