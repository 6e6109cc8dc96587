"""Durable per-item state: ``open_ledger`` picks the store from a URL."""

from __future__ import annotations

from pathlib import Path

from sluice.ledger.base import Attempt, Ledger, PlannedAttempt

__all__ = ["Attempt", "Ledger", "PlannedAttempt", "open_ledger", "default_ledger_url"]


def default_ledger_url() -> str:
    """``$SLUICE_LEDGER_URL``, else ``sqlite:///$SLUICE_HOME/ledger.db``."""
    from sluice.settings import sluice_settings

    settings = sluice_settings()
    return settings.ledger_url or f"sqlite:///{settings.home / 'ledger.db'}"


def open_ledger(url: str | None = None) -> Ledger:
    """Open the ledger at ``url``: ``sqlite:///path``, ``postgresql://...``, or
    ``block:NAME`` for a saved ``LedgerSettings`` block (which keeps the password secret)."""
    url = url or default_ledger_url()
    if url.startswith("block:"):
        from blocks.ledger import LedgerSettings
        from sluice.server import load_block

        name = url.removeprefix("block:")
        url = load_block(LedgerSettings, name, "ledger URL block:").resolved_url()
    if url.startswith("sqlite:///"):
        from sluice.ledger.sqlite import SqliteLedger

        return SqliteLedger(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        from sluice.ledger.postgres import PostgresLedger

        return PostgresLedger(url)
    from sluice.errors import SluiceInputError

    raise SluiceInputError(f"ledger URL {url!r}: expected sqlite:///PATH or postgresql://...")
