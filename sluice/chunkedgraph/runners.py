"""Where callable work runs: local worker processes that die with the orchestrator.

- :func:`local_processes`: long-lived ``spawn`` worker processes for callable work. Each
  worker watches its parent through a pidfd and exits the moment the parent is gone, so
  a SIGKILLed orchestrator leaves no workers behind; with them gone the multiprocessing
  resource tracker sees its pipe close, unlinks the pool's ``/dev/shm`` semaphores and
  exits too.
- :func:`check_dask_address`: a scheduler address is well formed and answers within a
  few seconds, checked before anything starts.

The task runner that runs the batches (threads or Dask) is chosen in
``sluice.tasks.chunkedgraph.batch_runner``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import select
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from sluice.errors import SluiceInputError

DASK_CONNECT_SECONDS = 3.0
_DASK_ADDRESS = re.compile(
    r"^(?:tcp|tls)://([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:]{2,39}\]):(\d{1,5})$"
)


def _exit_with_parent(parent: int) -> None:
    """Worker initializer: exit at once when ``parent`` (the orchestrator) ends."""
    try:
        watched = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)

    def watch() -> None:
        select.select([watched], [], [])  # readable when the parent has exited
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def local_processes(count: int) -> Iterator[ProcessPoolExecutor | None]:
    """``count`` worker processes for callable work (``spawn``: the flow has threads).

    Prefect's own ProcessPoolTaskRunner cost ~0.3 s of wall time per task run here
    (measured), so task runs stay in threads and hand their batch to these processes.
    """
    if count < 1:
        yield None
        return
    pool = ProcessPoolExecutor(
        count,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def check_dask_address(address: str) -> None:
    """Refuse a malformed or unreachable scheduler address in a few seconds, not 30."""
    match = _DASK_ADDRESS.match(address)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise SluiceInputError(
            f"--dask-address {address[:100]!r}: expected tcp://host:port or tls://host:port"
        )
    host = match.group(1).strip("[]")
    try:
        with socket.create_connection((host, int(match.group(2))), DASK_CONNECT_SECONDS):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise SluiceInputError(f"--dask-address {address}: unreachable ({reason})") from None
