"""The embedded default: a real local Prefect server started on demand and reused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from sluice import server
from sluice.cli import app
from tests.conftest import free_port
from tests.core.sweep_workload import write_template
from tests.stac.conftest import bucket, s3_endpoint, stac_api, stac_fixture  # noqa: F401

STAC_FIXTURES = ("stac_fixture", "stac_api", "bucket")  # the STAC tests' real servers


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


SLUICE = Path(sys.executable).with_name("sluice")


def _as_a_user(tmp_path: Path, port: int) -> dict[str, str]:
    """A user's environment: no Prefect settings at all, a private HOME and SLUICE_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        HOME=str(tmp_path / "user"),
        SLUICE_HOME=str(tmp_path / "home"),
        SLUICE_SERVER_PORT=str(port),
    )
    return env


def _sluice(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SLUICE), *argv], env=env, capture_output=True, text=True, timeout=600
    )


def test_no_command_starts_a_temporary_prefect_server(tmp_path, request):
    fixture_dir, stac_url, s3_bucket = map(request.getfixturevalue, STAC_FIXTURES)
    port = free_port()
    env = _as_a_user(tmp_path, port)
    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(tmp_path / "done.log"))
    items = tmp_path / "items.txt"
    items.write_text("ahps-aaa1-nws\n")
    commands = {
        "sweep": [
            "sweep", "--template-path", str(template), "--count", "1", "--tier", "0",
            "--schedule-start-gi", "0.0625", "--report-dir", str(tmp_path / "sweep"),
        ],
        "stac-batch": [
            "stac-batch", "--batch_name", "plain", "--output_root", f"s3://{s3_bucket}/out",
            "--hand_index_path", str(fixture_dir / "hand_index"), "--stac_api_url", stac_url,
            "--benchmark_sources", "nws-fim-collection", "--item_list", str(items),
            "--use-local-creds", "--wait_seconds", "0", "--report_dir", str(tmp_path / "stac"),
        ],
    }  # fmt: skip
    try:
        for name, argv in commands.items():
            result = _sluice(env, *argv)
            shown = f"{name}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
            assert result.returncode == 0, shown
            assert "temporary server" not in result.stdout + result.stderr, shown
            assert f"View at http://127.0.0.1:{port}/runs/flow-run/" in result.stderr, shown
    finally:
        _sluice(env, "server", "stop")
    databases = {p.relative_to(tmp_path) for p in tmp_path.rglob("*.db")}
    assert databases == {Path("home/prefect/prefect.db"), Path("home/ledger.db")}
