"""The embedded default: a local Prefect server that Sluice starts on demand.

Prefect's per-process ephemeral server loses most task-run records and costs
seconds per call, so when no ``PREFECT_API_URL`` is set Sluice starts one real
``prefect server start`` (SQLite) in the background under ``SLUICE_HOME`` and
reuses it in every later call.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

DEFAULT_PORT = 4200
START_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class EmbeddedServer:
    """Where the embedded server lives."""

    home: Path
    port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "prefect-server.log"


def sluice_home() -> Path:
    """``$SLUICE_HOME`` or ``~/.sluice``: the server database, ledger and logs."""
    return Path(os.environ.get("SLUICE_HOME", Path.home() / ".sluice")).expanduser()


def server_environment(home: Path) -> dict[str, str]:
    """Prefect settings for the embedded server and its clients."""
    return {
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "DO_NOT_TRACK": "1",
    }


def is_healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start(home: Path, port: int, timeout: float = START_TIMEOUT_SECONDS) -> EmbeddedServer:
    """Start (or reuse) the embedded server and wait until its API answers."""
    server = EmbeddedServer(home=home, port=port)
    if is_healthy(server.api_url):
        return server
    if not _port_free(port):
        raise RuntimeError(
            f"port {port} is taken by something that is not a Prefect server; "
            "set SLUICE_SERVER_PORT or PREFECT_API_URL"
        )
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **server_environment(home)}
    env.pop("PREFECT_API_URL", None)
    env["PREFECT_UI_API_URL"] = server.api_url  # else the UI calls port 4200, whatever --port is
    with server.log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not is_healthy(server.api_url):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the embedded Prefect server did not answer within {timeout:.0f} s; "
                f"see {server.log_path}"
            )
        time.sleep(0.25)
    (home / "server.pid").write_text(str(process.pid))
    return server


def ensure_api() -> str:
    """Point this process at a Prefect API: ``PREFECT_API_URL`` if set, else the embedded one.

    Call before ``prefect`` is imported by flow code. Returns the API URL.
    """
    if url := os.environ.get("PREFECT_API_URL"):
        return url
    home = sluice_home()
    port = int(os.environ.get("SLUICE_SERVER_PORT", DEFAULT_PORT))
    server = start(home, port)
    os.environ.update(server_environment(home))
    os.environ["PREFECT_API_URL"] = server.api_url
    _refresh_prefect_settings()
    print(f"Prefect UI: {server.ui_url}", file=sys.stderr)
    return server.api_url


def _refresh_prefect_settings() -> None:
    """Make an already imported Prefect re-read its settings from the environment.

    Prefect builds its settings context when first imported; a command that imported it
    before the API URL was set would otherwise start Prefect's temporary server.
    """
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


def stop(home: Path) -> None:
    """Stop the embedded server started under ``home`` (its whole process group)."""
    pid_file = home / "server.pid"
    if not pid_file.exists():
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(int(pid_file.read_text()), signal.SIGTERM)
    pid_file.unlink()
