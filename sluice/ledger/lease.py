"""``hold_run``: one live process per run, across machines sharing a ledger."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sluice.ledger.base import Holder, Ledger

LEASE_SECONDS = 60.0  # a dead holder's lease is taken over this long after its last renewal
logger = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """The run's lease was taken over, or could not be renewed before it expired, while
    this process ran it: another process may have run the same items since."""


@contextmanager
def hold_run(ledger: Ledger, run: str, *, ttl: float = LEASE_SECONDS) -> Iterator[Holder]:
    """Hold ``run``'s lease while the block runs, renewing it every ``ttl / 3`` seconds.

    Raises ``RunLeased`` (one line: who holds it, since when) when another live
    process holds it. A holder that died is taken over once its lease expires, or
    at once when it ran on this host and its process is gone. A lease lost while the
    block runs is logged at once and raised as ``LeaseLost`` when the block ends, so
    the run never reports success on work another process may have shared.
    """
    holder = Holder.this_process()
    ledger.acquire(run, holder, ttl)
    stopped = threading.Event()
    lost: list[str] = []

    def renew() -> None:
        renewed = time.monotonic()
        while not stopped.wait(ttl / 3):
            try:
                if ledger.renew(run, holder, ttl):
                    renewed = time.monotonic()
                    continue
                lost.append("taken over by another process")
            except Exception as exc:  # noqa: BLE001 - retried at the next renewal
                logger.warning("run %r: lease renewal failed: %s", run, exc)
                if time.monotonic() - renewed < ttl:
                    continue
                lost.append(f"not renewed for {ttl:.0f} s ({exc})")
            logger.error("run %r: lease lost: %s", run, lost[0])
            return

    renewer = threading.Thread(target=renew, name=f"lease-{run}", daemon=True)
    renewer.start()
    try:
        yield holder
    finally:
        stopped.set()
        renewer.join()
        with contextlib.suppress(Exception):  # a last look: still ours at the end?
            if not lost and not ledger.renew(run, holder, ttl):
                lost.append("taken over by another process")
        ledger.release(run, holder)
    if lost:
        raise LeaseLost(f"run {run!r}: its lease was {lost[0]} while it ran")


@contextmanager
def leased(run: str, url: str | None = None) -> Iterator[Holder]:
    """``hold_run`` on the ledger at ``url`` (default: ``$SLUICE_LEDGER_URL`` or SQLite
    under ``$SLUICE_HOME``), opened for the block and closed after it."""
    from sluice.ledger import open_ledger

    ledger = open_ledger(url)
    try:
        with hold_run(ledger, run) as holder:
            yield holder
    finally:
        ledger.close()


def refuse_if_running(run: str, url: str | None = None) -> None:
    """Raise ``RunLeased`` now if a live process holds ``run``: a command line's check
    before it starts a server and a flow run (the flow itself then takes the lease)."""
    with leased(run, url):
        pass
