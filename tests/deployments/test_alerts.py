"""`sluice alerts install`: a failed run of a Sluice deployment reaches the user's notification
block, through a real Prefect server's automations (triggers and actions services)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prefect import flow, tags
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client

from tests.bad_input import BadInput, assert_refused

pytestmark = pytest.mark.slow


@pytest.fixture
def webhook():
    """A local HTTP endpoint standing in for Slack or a pager; yields (url, received bodies)."""
    received: queue.Queue[dict] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


@flow(name="alerts-probe")
def failing_probe() -> None:
    raise RuntimeError("the probe failed on purpose")


@flow(name="alerts-quiet-probe")
def untagged_failing_probe() -> None:
    raise RuntimeError("not a Sluice deployment run")


def _sluice(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sluice.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_a_failed_sluice_run_notifies_once_and_install_replaces(prefect_api, webhook) -> None:
    url, received = webhook
    CustomWebhookNotificationBlock(
        name="ops", url=url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
    ).save("ops", overwrite=True)

    missing = _sluice("alerts", "install", "--notify", "custom-webhook/nobody")
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: --notify 'custom-webhook/nobody': no such block on ")
    Secret(value="x").save("not-a-notifier", overwrite=True)
    wrong = _sluice("alerts", "install", "--notify", "secret/not-a-notifier")
    assert wrong.returncode == 2
    first_line = wrong.stderr.strip().splitlines()[0]  # (Prefect may add its own exit notes)
    assert first_line == "error: --notify 'secret/not-a-notifier': a Secret, not a notifier"
    first = _sluice("alerts", "install", "--notify", "custom-webhook/ops")
    again = _sluice("alerts", "install", "--notify", "custom-webhook/ops")
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    assert again.returncode == 0 and "replaced" in again.stdout
    with get_client(sync_client=True) as client:
        assert len(client.read_automations_by_name("sluice-failed-runs")) == 1

    untagged_failing_probe(return_state=True)  # not tagged `sluice`: no notification
    with tags("sluice", "karabo"):
        state = failing_probe(return_state=True)
    assert state.is_failed()

    message = received.get(timeout=240)  # the automation fires once the server sees Failed
    assert message["subject"].startswith("Sluice: alerts-probe run ")
    assert message["subject"].endswith(" is Failed")
    assert "the probe failed on purpose" in message["body"]
    assert received.empty()


@pytest.mark.parametrize(
    "case",
    [
        BadInput(["alerts", "install", "--notify", "ops"], "--notify", "no type").param(),
        BadInput(
            ["alerts", "install", "--notify", "custom-webhook/"], "--notify", "no name"
        ).param(),
        BadInput(["alerts", "install", "--notify", "a/b/c"], "--notify", "two slashes").param(),
        BadInput(["alerts", "install"], "--notify", "missing").param(),
    ],
)
def test_a_malformed_block_reference_is_refused(case: BadInput, tmp_path) -> None:
    assert_refused(case, tmp_path / "home")
