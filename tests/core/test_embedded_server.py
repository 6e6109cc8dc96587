"""The embedded default: a real local Prefect server started on demand and reused."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sluice import server
from sluice.cli import app
from tests.conftest import free_port
from tests.core.sweep_workload import write_template
from tests.nomad_double.fixture import nomad_api  # noqa: F401
from tests.stac.conftest import bucket, s3_endpoint, stac_api, stac_fixture  # noqa: F401

STAC_FIXTURES = ("stac_fixture", "stac_api", "bucket")  # the STAC tests' real servers
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WATERSHEDS, CHUNKEDGRAPH = EXAMPLES / "watersheds", EXAMPLES / "chunkedgraph"


@pytest.fixture(autouse=True)
def _prefect_settings_restored():
    """Tests here point Prefect at servers they stop: re-read the settings afterwards."""
    yield
    server.refresh_prefect_settings()


@pytest.fixture
def private(tmp_path, monkeypatch) -> Path:
    """A private SLUICE_HOME and port, and no Prefect settings (restored after the test)."""
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SLUICE_SERVER_PORT", str(free_port()))
    for key in ["PREFECT_API_URL", "PREFECT_API_AUTH_STRING", *server.server_environment(tmp_path)]:
        monkeypatch.delenv(key, raising=False)
    return tmp_path / "home"


def _cli(*argv: str):
    return CliRunner().invoke(app, list(argv))


def test_started_on_demand_private_reused_and_stopped(private, capsys):
    assert _cli("server", "status").exit_code == 1
    api_url = server.ensure_api()
    said = capsys.readouterr().err
    assert "Starting the embedded Prefect server" in said and "Started it in " in said, said
    port = int(os.environ["SLUICE_SERVER_PORT"])
    assert api_url == f"http://127.0.0.1:{port}/api" and server.is_healthy(api_url)

    # Private: the credential is in a file only this user reads, and the API needs it.
    assert stat.S_IMODE(server.profiles_path(private).stat().st_mode) == 0o600
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    secret_filter = httpx.post(f"{api_url}/block_documents/filter", json={"include_secrets": True})
    assert secret_filter.status_code == 401
    assert server.credential(private) not in os.environ.values()
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # Sluice's clients use the credential
        assert client.api_healthcheck() is None
        assert client.read_block_documents() == []

    pid = (private / "server.pid").read_text()
    os.environ.pop("PREFECT_API_URL")
    assert server.ensure_api() == api_url
    assert "Starting" not in capsys.readouterr().err
    assert (private / "server.pid").read_text() == pid, "a second server was started"
    assert "running" in _cli("server", "status").stdout

    stopped = _cli("server", "stop")
    assert stopped.exit_code == 0 and "stopped the embedded Prefect server" in stopped.stdout
    assert not server.is_healthy(api_url)
    assert "no embedded server is running" in _cli("server", "stop").stdout


def test_an_explicit_api_url_is_respected_and_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    assert server.ensure_api() == "http://prefect.example:4200/api"
    said = capsys.readouterr().err.strip().splitlines()
    assert said == [
        "Prefect API: http://prefect.example:4200/api (PREFECT_API_URL; not the embedded server)"
    ]
    assert not (tmp_path / "home").exists()


def test_someone_elses_server_is_neither_used_nor_stopped(private, prefect_api, monkeypatch):
    port = httpx.URL(prefect_api).port
    monkeypatch.setenv("SLUICE_SERVER_PORT", str(port))
    started = _cli("server", "start")
    assert started.exit_code == 2
    assert started.stderr.strip() == (
        f"error: port {port} is taken by another Prefect server, not the embedded server of "
        f"{private}; set SLUICE_SERVER_PORT to a free port, or PREFECT_API_URL to use that server"
    )
    status = _cli("server", "status")
    assert status.exit_code == 1 and "answered by another Prefect server" in status.stdout
    stopped = _cli("server", "stop")
    assert stopped.exit_code == 0 and "no embedded server is running" in stopped.stdout
    assert server.is_healthy(prefect_api), "someone else's server was stopped"


def test_a_port_taken_by_another_program_is_one_line(private, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("SLUICE_SERVER_PORT", str(port))
        result = _cli("server", "start")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} is taken by another program, not the embedded server of {private}; "
        "set SLUICE_SERVER_PORT to a free port, or PREFECT_API_URL to use that server"
    ]


@pytest.mark.parametrize("content", ["{pid}", "garbage\x1b[31m", "99999999", "-1", ""])
def test_a_stale_or_garbage_pid_file_kills_nothing(private, content):
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        private.mkdir(parents=True)
        (private / "server.pid").write_text(content.format(pid=bystander.pid))
        result = _cli("server", "stop")
        assert result.exit_code == 0 and result.exception is None, result.output
        assert result.stdout.count("\n") == 1 and "no process was signalled" in result.stdout
        assert "Traceback" not in result.output
        assert bystander.poll() is None, "an unrelated process was killed"
        assert not (private / "server.pid").exists()
        assert _cli("server", "status").exit_code == 1
    finally:
        bystander.kill()
        bystander.wait()


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
        "watersheds create": [
            "watersheds", "create", "wsplain", "--base", str(WATERSHEDS / "base"),
            "--stages", str(WATERSHEDS / "stages.yaml"), "--root", str(tmp_path / "ws"),
        ],
        "chunkedgraph ingest": [
            "chunkedgraph", "ingest", "cgplain", str(CHUNKEDGRAPH / "dataset.yml"), "--noop",
        ],
    }  # fmt: skip
    try:
        for name, argv in commands.items():
            result = _sluice(env, *argv)
            shown = f"{name}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
            assert result.returncode == 0, shown
            assert "temporary server" not in result.stdout + result.stderr, shown
            assert "Still processing items" not in result.stderr, shown
            assert "WARNING" not in result.stderr, shown  # e.g. Prefect's profile warning
            assert f"View at http://127.0.0.1:{port}/runs/flow-run/" in result.stderr, shown
    finally:
        _sluice(env, "server", "stop")
    databases = {p.relative_to(tmp_path) for p in tmp_path.rglob("*.db")}
    assert databases == {Path("home/prefect/prefect.db"), Path("home/ledger.db")}


def test_blocks_are_looked_up_in_the_embedded_server(private, request, monkeypatch):
    from sluice.blocks.nomad import NomadCluster

    nomad = request.getfixturevalue("nomad_api")
    server.ensure_api()
    NomadCluster(address=nomad.url, token=nomad.token).save("saved")
    for key in ["PREFECT_API_URL", *server.server_environment(private)]:  # a fresh command
        monkeypatch.delenv(key)
    server.refresh_prefect_settings()
    try:
        found = _cli("stac-purge", "--nomad_block", "saved")
        assert found.exit_code == 0 and found.stdout.startswith("purged 0"), found.output
        missing = _cli("stac-purge", "--nomad_block", "nowhere")
        assert missing.exit_code == 2, missing.output
        assert missing.stderr.strip().splitlines() == [
            f"error: --nomad_block 'nowhere': no such NomadCluster block on "
            f"http://127.0.0.1:{os.environ['SLUICE_SERVER_PORT']}/api"
        ]
    finally:
        server.stop(private)


def run_script(script: str, home: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (argv: home, port) as a fresh process with no ``PREFECT_*`` settings;
    then stop any server it left running in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    argv = [sys.executable, "-c", script, str(home), str(free_port())]
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    finally:
        server.stop(home)


# a flow that logs 300 lines to the embedded server it starts
CHATTY_SCRIPT = """

import sys
from pathlib import Path

from sluice import server

home = Path(sys.argv[1])
server.use(server.start(home, int(sys.argv[2])))
from prefect import flow, get_run_logger


@flow
def chatty():
    for line in range(300):
        get_run_logger().info("line %d", line)


chatty()
"""
EXIT_SCRIPT = CHATTY_SCRIPT + "print(server.stop(home))\n"


def test_stopping_the_server_sends_queued_logs_first(tmp_path):
    """Stopping the server while Prefect's log queue still holds lines used to leave the
    process retrying them at exit ("Error logging to API", about a minute)."""
    done = run_script(EXIT_SCRIPT, tmp_path / "home", timeout=900)
    assert done.returncode == 0, done.stderr
    assert "stopped the embedded Prefect server" in done.stdout, done.stdout
    assert "Error logging to API" not in done.stderr, done.stderr
    assert "All connection attempts failed" not in done.stderr, done.stderr


SELECT_SCRIPT = """
import sys
from pathlib import Path

import prefect.context  # imported before the API is known, as some commands do

from sluice import server

home = Path(sys.argv[1])
server._ensure_credential(home)
server.use(server.EmbeddedServer(home=home, port=int(sys.argv[2])))
print(prefect.context.get_settings_context().profile.name)
"""


def test_a_command_that_imported_prefect_first_selects_the_profile_silently(tmp_path):
    """Prefect, imported before Sluice points it at the embedded server, used to warn
    "Active profile 'sluice-embedded' ... not found" on every such command."""
    done = run_script(SELECT_SCRIPT, tmp_path / "home", timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.strip() == server.PROFILE


EVENTS_SCRIPT = """
import sys
from pathlib import Path

from sluice import server
from sluice.cli import main

server.use(server.start(Path(sys.argv[1]), int(sys.argv[2])))
from prefect.events import emit_event

for item in range(300):  # still queued when the command ends
    emit_event(event="sluice.test", resource={"prefect.resource.id": f"sluice.item.{item}"})
sys.argv = ["sluice", "--help"]
main()
"""


def test_a_command_ends_with_its_events_sent_and_says_nothing_of_them(tmp_path):
    """Prefect's exit hook printed "Still processing items: 300 items remaining..." when a
    command ended with events queued; `sluice` sends them first, then stops the worker."""
    done = run_script(EVENTS_SCRIPT, tmp_path / "home", timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Still processing items" not in done.stderr, done.stderr


SETTLE_SCRIPT = (
    CHATTY_SCRIPT
    + "server.settle_prefect_queues(timeout=3600)  # returns once sent, not at its timeout\n"
    + 'print("settled")\n'
)


def test_settling_returns_once_the_logs_are_sent_not_at_its_timeout(tmp_path):
    """Prefect's log worker batches and never marks its queue's items done: waiting on that
    queue held every command that logged to the API for the whole timeout at exit."""
    done = run_script(SETTLE_SCRIPT, tmp_path / "home", timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("settled"), done.stderr
