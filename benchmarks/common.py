"""Benchmark plumbing: a private embedded Prefect server and task-run counts."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from sluice import server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def embedded_server():
    """A fresh SLUICE_HOME with its own Prefect server; yields the home directory."""
    home = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    started = server.start(home, free_port())
    os.environ.update(server.server_environment(home))
    os.environ["PREFECT_API_URL"] = started.api_url
    os.environ["SLUICE_HOME"] = str(home)
    try:
        yield home
    finally:
        server.stop(home)


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def task_runs_recorded(flow_run_id, expected: int, settle_seconds: float = 60.0) -> int:
    """Task runs the Prefect server holds for one flow run.

    Task runs are recorded from events after the fact, so this waits (bounded)
    until ``expected`` are there or the count stops growing.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def count() -> int:
        total, page = 0, 200
        async with get_client() as client:
            while True:
                runs = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                    limit=page,
                    offset=total,
                )
                total += len(runs)
                if len(runs) < page:
                    return total

    deadline = time.monotonic() + settle_seconds
    recorded = asyncio.run(count())
    while recorded < expected and time.monotonic() < deadline:
        time.sleep(1.0)
        recorded = asyncio.run(count())
    return recorded
