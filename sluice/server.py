"""The embedded default: a local Prefect server that Sluice starts on demand.

Prefect's per-process ephemeral server loses most task-run records and costs
seconds per call, so when no ``PREFECT_API_URL`` is set Sluice starts one real
``prefect server start`` (SQLite) in the background under ``SLUICE_HOME`` and
reuses it in every later call.

The server is private to its home: it runs with Prefect's basic auth, whose random
credential lives in ``$SLUICE_HOME/prefect/profiles.toml`` (mode 0600, a Prefect profile
that Sluice's clients select through ``PREFECT_PROFILE``, so the secret never enters a
process environment). ``$SLUICE_HOME/server.pid`` names its process. Before a server is
used or stopped, Sluice checks it is this home's: the process runs ``prefect server
start`` with this home's ``PREFECT_HOME``, and the API refuses requests without the
credential and accepts them with it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from sluice.errors import SluiceInputError
from sluice.filelock import file_lock
from sluice.settings import sluice_settings

START_TIMEOUT_SECONDS = 300.0  # a loaded 2-core machine has taken 75 s
STOP_TIMEOUT_SECONDS = 30.0
PROFILE = "sluice-embedded"  # the Prefect profile holding the embedded server's credential
USER = "sluice"


class ServerUnavailable(SluiceInputError):
    """The embedded server cannot be started or used (port taken, failed start)."""


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


def pid_path(home: Path) -> Path:
    return home / "server.pid"


def profiles_path(home: Path) -> Path:
    """The 0600 Prefect profiles file that holds the server's credential."""
    return home / "prefect" / "profiles.toml"


def server_environment(home: Path) -> dict[str, str]:
    """Prefect settings for the embedded server and its clients (no secret in them)."""
    return {
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_PROFILES_PATH": str(profiles_path(home)),
        "PREFECT_PROFILE": PROFILE,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "DO_NOT_TRACK": "1",
    }


def credential(home: Path) -> str | None:
    """The embedded server's ``user:password`` auth string, if one was made."""
    try:
        profiles = tomllib.loads(profiles_path(home).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return profiles.get("profiles", {}).get(PROFILE, {}).get("PREFECT_API_AUTH_STRING")


def _ensure_credential(home: Path) -> str:
    """Make the random credential once, readable by this user only."""
    if existing := credential(home):
        return existing
    secret = f"{USER}:{secrets.token_urlsafe(32)}"
    path = profiles_path(home)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    profile = {
        "PREFECT_API_AUTH_STRING": secret,
        "PREFECT_SERVER_API_AUTH_STRING": secret,
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
    }
    text = f'active = "{PROFILE}"\n\n[profiles.{PROFILE}]\n' + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in profile.items()
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)
    return secret


def _auth_header(secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def is_healthy(api_url: str) -> bool:
    try:
        return _probe_client().get(f"{api_url}/health").status_code == 200
    except httpx.HTTPError:
        return False


def answers_as_ours(server: EmbeddedServer) -> bool:
    """The API refuses a request without this home's credential and accepts it with it."""
    secret = credential(server.home)
    if secret is None:
        return False
    url = f"{server.api_url}/admin/version"
    try:
        anonymous = _probe_client().get(url).status_code
        authorised = _probe_client().get(url, headers=_auth_header(secret)).status_code
    except httpx.HTTPError:
        return False
    return anonymous == 401 and authorised == 200


@functools.cache
def _probe_client() -> httpx.Client:
    """One client for every probe: a new one per request built a TLS context each time,
    which took about a quarter of a core while a command waited for the server to start."""
    return httpx.Client(timeout=2.0)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _proc(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    stat = _proc(pid, "stat")
    return bool(stat) and stat.rsplit(b")", 1)[-1].split()[0] not in (b"Z", b"X")


def _server_port(pid: int, home: Path) -> int | None:
    """The port of ``pid`` if it is this home's ``prefect server start``, else None."""
    if not _alive(pid):
        return None
    argv = _proc(pid, "cmdline").decode(errors="replace").split("\0")
    environ = _proc(pid, "environ").split(b"\0")
    ours = f"PREFECT_HOME={home / 'prefect'}".encode()
    if argv[2:5] != ["prefect", "server", "start"] or ours not in environ:
        return None
    with contextlib.suppress(ValueError, IndexError):
        return int(argv[argv.index("--port") + 1])
    return None


@dataclass(frozen=True)
class Record:
    """What ``server.pid`` says: the pid, and the port if that pid is this home's server."""

    text: str
    pid: int | None
    port: int | None


def read_record(home: Path) -> Record | None:
    """The pid file, checked: None when there is none."""
    try:
        text = pid_path(home).read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    pid = int(text) if text.isdigit() and 0 < int(text) < 2**22 else None
    return Record(text=text[:40], pid=pid, port=_server_port(pid, home) if pid else None)


def _wait_until_ours(server: EmbeddedServer, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not answers_as_ours(server):
        if not _alive(pid):
            raise ServerUnavailable(
                f"the embedded Prefect server exited while starting; see {server.log_path}"
            )
        if time.monotonic() > deadline:
            raise ServerUnavailable(
                f"the embedded Prefect server did not answer within {timeout:.0f} s; "
                f"see {server.log_path}"
            )
        time.sleep(0.25)


def start(home: Path, port: int, timeout: float = START_TIMEOUT_SECONDS) -> EmbeddedServer:
    """Start (or reuse) this home's server and wait until it answers with its credential."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    with file_lock(home / "server.lock"):  # one starter per home: two commands share one server
        record = read_record(home)
        if record is not None and record.pid is not None and record.port is not None:
            found = EmbeddedServer(home=home, port=record.port)
            _wait_until_ours(found, record.pid, timeout)  # it may still be starting
            return found
        server = EmbeddedServer(home=home, port=port)
        if not _port_free(port):
            kind = "another Prefect server" if is_healthy(server.api_url) else "another program"
            raise ServerUnavailable(
                f"port {port} is taken by {kind}, not the embedded server of {home}; "
                "set SLUICE_SERVER_PORT to a free port, or PREFECT_API_URL to use that server"
            )
        _ensure_credential(home)
        env = {**os.environ, **server_environment(home)}
        for inherited in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING"):
            env.pop(inherited, None)
        env.pop("PREFECT_SERVER_API_AUTH_STRING", None)  # the profile's credential applies
        env["PREFECT_UI_API_URL"] = server.api_url  # else the UI calls port 4200
        print(f"Starting the embedded Prefect server for {home} ...", file=sys.stderr)
        began = time.monotonic()
        with server.log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start"]
                + ["--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        pid_path(home).write_text(str(process.pid))
        try:
            _wait_until_ours(server, process.pid, timeout)
        except ServerUnavailable:  # leave nothing behind that nobody would stop
            _terminate(process.pid)
            process.wait()
            pid_path(home).unlink(missing_ok=True)
            raise
        print(f"Started it in {time.monotonic() - began:.1f} s.", file=sys.stderr)
        return server


def _configured_by_sluice() -> bool:
    return os.environ.get("PREFECT_PROFILE") == PROFILE


_announced: set[str] = set()


def ensure_api() -> str:
    """Point this process at a Prefect API: ``PREFECT_API_URL`` if set, else the embedded one.

    Returns the API URL. Prefect, if already imported, re-reads its settings.
    """
    if url := os.environ.get("PREFECT_API_URL"):
        if not _configured_by_sluice() and url not in _announced:
            _announced.add(url)
            print(f"Prefect API: {url} (PREFECT_API_URL; not the embedded server)", file=sys.stderr)
        return url
    settings = sluice_settings()
    server = start(settings.home, settings.server_port)
    use(server)
    print(f"Prefect UI: {server.ui_url}", file=sys.stderr)
    return server.api_url


BlockT = TypeVar("BlockT")


def load_block(block_type: type[BlockT], name: str, flag: str) -> BlockT:
    """The saved block ``name``, looked up in the API this process uses (the embedded server
    is started first when no ``PREFECT_API_URL`` is set). A block that is not there, or an
    API that cannot be reached, is one line naming ``flag``."""
    url = ensure_api()
    try:
        return block_type.load(name)  # type: ignore[attr-defined]
    except ValueError:
        kind = "" if block_type.__name__ == "Block" else f"{block_type.__name__} "
        raise SluiceInputError(f"{flag} {name!r}: no such {kind}block on {url}") from None
    except (httpx.HTTPError, OSError) as error:
        raise ServerUnavailable(f"{flag} {name!r}: cannot read it from {url}: {error}") from None


def use(server: EmbeddedServer) -> None:
    """Make this process (and the processes it starts) a client of ``server``."""
    os.environ.update(server_environment(server.home))
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ.pop("PREFECT_API_AUTH_STRING", None)  # the profile's credential applies
    refresh_prefect_settings()


def refresh_prefect_settings() -> None:
    """Make an already imported Prefect re-read its settings from the environment.

    Prefect builds its settings context when first imported; a command that imported it
    before the API URL was set would otherwise start Prefect's temporary server.
    """
    if "prefect.context" in sys.modules:
        from prefect.context import SettingsContext, get_settings_context
        from prefect.context import refresh_global_settings_context as refresh
        from prefect.settings import Settings

        # Prefect finds the active profile through the current settings' profiles path: give
        # it the new one, or it warns that ``sluice-embedded`` is in no profiles file.
        with SettingsContext(profile=get_settings_context().profile, settings=Settings()):
            refresh()


def settle_prefect_queues(timeout: float = 30.0) -> None:
    """Let this process's queued Prefect logs and events reach the server, then stop their
    workers, all while the server still answers.

    In this order Prefect's own exit hook finds nothing left: it would otherwise print
    "Still processing items: N items remaining..." while it sends events, or, with the
    server already stopped, retry them for about a minute. Waits at most ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    if "prefect.events.worker" in sys.modules:
        from prefect.events.worker import EventsWorker

        # Prefect 3's registry of running workers (a pinned version); `instance()` would
        # start a new worker where none runs. Emptied first, so the stop finds nothing left.
        for instance in tuple(EventsWorker._instances.values()):  # type: ignore[misc]
            while instance._queue.qsize() and left():
                time.sleep(0.05)
        EventsWorker.drain_all(timeout=left())
    if "prefect.logging.handlers" in sys.modules:
        from prefect.logging.handlers import APILogWorker

        # A batched service: its drain sends what is queued (it never marks items done, so
        # waiting on its queue would last the whole timeout).
        APILogWorker.drain_all(timeout=left())


def _terminate(pid: int) -> None:
    """SIGTERM the server's process group, SIGKILL it if it has not gone in time."""
    with contextlib.suppress(ProcessLookupError):
        kill = os.killpg if os.getpgid(pid) == pid else os.kill
        kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            kill(pid, signal.SIGKILL)


def stop(home: Path) -> str:
    """Stop this home's server (its whole process group); say what was done."""
    record = read_record(home)
    if record is None:
        return f"no embedded server is running for {home}"
    if record.port is None:
        pid_path(home).unlink(missing_ok=True)
        what = f"pid {record.pid}" if record.pid else f"unreadable text {record.text!r}"
        return (
            f"no embedded server is running for {home}: removed a stale {pid_path(home).name} "
            f"({what} is not its server); no process was signalled"
        )
    pid = record.pid
    assert pid is not None
    settle_prefect_queues()
    _terminate(pid)
    pid_path(home).unlink(missing_ok=True)
    return f"stopped the embedded Prefect server of {home} (pid {pid}, port {record.port})"
