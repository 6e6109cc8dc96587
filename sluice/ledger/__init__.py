"""Durable per-item state: ``open_ledger`` picks the store from a URL."""

from __future__ import annotations

import os

from sluice.ledger.base import Attempt, Ledger, PlannedAttempt, RunLeased
from sluice.ledger.lease import hold_run

__all__ = [
    "Attempt",
    "Ledger",
    "PlannedAttempt",
    "RunLeased",
    "default_ledger_url",
    "hold_run",
    "open_ledger",
]


def default_ledger_url() -> str:
    """``$SLUICE_LEDGER_URL``, else ``sqlite:///$SLUICE_HOME/ledger.db``."""
    if url := os.environ.get("SLUICE_LEDGER_URL"):
        return url
    from sluice.server import sluice_home

    return f"sqlite:///{sluice_home() / 'ledger.db'}"


def open_ledger(url: str | None = None) -> Ledger:
    """Open the ledger at ``url``: ``sqlite:///path``, ``postgresql://...``, or
    ``block:NAME`` for a saved ``LedgerSettings`` block (which keeps the password secret).
    The schema is upgraded to this Sluice's version on open."""
    url = url or default_ledger_url()
    if url.startswith("block:"):
        from blocks.ledger import LedgerSettings

        url = LedgerSettings.load(url.removeprefix("block:")).resolved_url()
    import sqlalchemy as sa

    from sluice.ledger.store import SqlLedger

    if url.startswith("sqlite:///"):
        return SqlLedger(sa.URL.create("sqlite", database=url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return SqlLedger(sa.make_url(url))
    from sluice.errors import SluiceInputError

    raise SluiceInputError(f"ledger URL {url!r}: expected sqlite:///PATH or postgresql://...")
