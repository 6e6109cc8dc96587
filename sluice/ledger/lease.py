"""``hold_run``: one live process per run, across machines sharing a ledger."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sluice.ledger.base import Holder, Ledger

LEASE_SECONDS = 60.0  # a dead holder's lease is taken over this long after its last renewal
logger = logging.getLogger(__name__)


@contextmanager
def hold_run(ledger: Ledger, run: str, *, ttl: float = LEASE_SECONDS) -> Iterator[Holder]:
    """Hold ``run``'s lease while the block runs, renewing it every ``ttl / 3`` seconds.

    Raises ``RunLeased`` (one line: who holds it, since when) when another live
    process holds it. A holder that died is taken over once its lease expires, or
    at once when it ran on this host and its process is gone.
    """
    holder = Holder.this_process()
    ledger.acquire(run, holder, ttl)
    stopped = threading.Event()

    def renew() -> None:
        while not stopped.wait(ttl / 3):
            try:
                if not ledger.renew(run, holder, ttl):
                    logger.warning("run %r: lease lost to another process", run)
                    return
            except Exception as exc:  # noqa: BLE001 - retried at the next renewal
                logger.warning("run %r: lease renewal failed: %s", run, exc)

    renewer = threading.Thread(target=renew, name=f"lease-{run}", daemon=True)
    renewer.start()
    try:
        yield holder
    finally:
        stopped.set()
        renewer.join()
        ledger.release(run, holder)


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
