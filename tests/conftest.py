"""Shared fixtures: every test session talks to a real local Prefect server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sluice import server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(argv: list[str], url: str, log: Path, timeout: float = 60.0) -> subprocess.Popen:
    """Start a server process and return once ``url`` answers (or fail with its log)."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:  # readiness of a server we started, not test synchronisation
        try:
            httpx.get(url, timeout=1.0)
            return process
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{argv[0]} did not start: {log.read_text()}") from None
            time.sleep(0.05)


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 API: ``moto_server`` (server mode) on loopback; its endpoint URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    moto = Path(sys.executable).with_name("moto_server")
    process = start_server(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        url,
        tmp_path_factory.mktemp("moto") / "moto.log",
    )
    yield url
    process.terminate()
    process.wait(timeout=30)


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


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real ``prefect server start`` in a private home, as the embedded default runs it
    (with its basic-auth credential). This process and the processes it starts are its
    clients. Returns the API URL with the credential as userinfo, so a plain
    ``httpx.post(f"{prefect_api}/...")`` authenticates too."""
    home = tmp_path_factory.mktemp("sluice-home")
    started = server.start(home, free_port())
    env = {**server.server_environment(home), "PREFECT_API_URL": started.api_url}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    # Prefect read its settings when first imported (at collection): re-read them, or
    # in-process flows and task threads quietly use a temporary ephemeral server.
    server.refresh_prefect_settings()
    yield str(httpx.URL(started.api_url).copy_with(userinfo=server.credential(home).encode()))
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop(home)  # sends this process's queued logs first, while the server answers
    server.refresh_prefect_settings()


@pytest.fixture
def sluice_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private SLUICE_HOME (ledger, logs) for one test."""
    home = tmp_path / "sluice-home"
    monkeypatch.setenv("SLUICE_HOME", str(home))
    return home


ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots (ignored by git)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,9000",
]


@pytest.fixture
def browser():
    """Headless Debian Chromium through selenium, with a throwaway profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or pytest.fail("Debian's chromium is not installed")
    driver_path = shutil.which("chromedriver") or pytest.fail("chromium-driver is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="sluice-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
