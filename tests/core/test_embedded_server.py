"""The embedded default: a real local Prefect server started on demand and reused."""

from __future__ import annotations

import time

from typer.testing import CliRunner

from sluice import server
from sluice.cli import app
from tests.conftest import free_port


def test_started_on_demand_reused_and_stopped(tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SLUICE_SERVER_PORT", str(port))
    for key in ["PREFECT_API_URL", *server.server_environment(tmp_path)]:
        monkeypatch.delenv(key, raising=False)  # restored after the test
    runner = CliRunner()
    assert runner.invoke(app, ["server", "status"]).exit_code == 1

    api_url = server.ensure_api()
    assert api_url == f"http://127.0.0.1:{port}/api" and server.is_healthy(api_url)
    pid = (tmp_path / "home" / "server.pid").read_text()
    monkeypatch.delenv("PREFECT_API_URL")
    assert server.ensure_api() == api_url
    assert (tmp_path / "home" / "server.pid").read_text() == pid, "a second server was started"
    assert "running" in runner.invoke(app, ["server", "status"]).stdout

    assert runner.invoke(app, ["server", "stop"]).exit_code == 0
    deadline = time.monotonic() + 60
    while server.is_healthy(api_url):
        assert time.monotonic() < deadline, "the server did not stop"
        time.sleep(0.1)


def test_an_explicit_api_url_is_respected(tmp_path, monkeypatch):
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    assert server.ensure_api() == "http://prefect.example:4200/api"
    assert not (tmp_path / "home").exists()
