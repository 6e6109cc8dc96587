"""Shared fixtures: every test session talks to a real local Prefect server."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from sluice import server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real ``prefect server start`` in a private home, as the embedded default uses."""
    home = tmp_path_factory.mktemp("sluice-home")
    started = server.start(home, free_port())
    env = {**server.server_environment(home), "PREFECT_API_URL": started.api_url}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: started.api_url}):
        yield started.api_url
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop(home)


@pytest.fixture
def sluice_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private SLUICE_HOME (ledger, logs) for one test."""
    home = tmp_path / "sluice-home"
    monkeypatch.setenv("SLUICE_HOME", str(home))
    return home
