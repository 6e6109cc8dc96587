"""Durable per-item state: ``open_ledger`` picks the store from a URL."""

from __future__ import annotations

import re
from pathlib import Path

from sluice.errors import SluiceInputError
from sluice.ledger.base import Attempt, Ledger, PlannedAttempt, RunLeased
from sluice.ledger.lease import hold_run, refuse_if_running

__all__ = [
    "Attempt",
    "Ledger",
    "check_ledger_url",
    "PlannedAttempt",
    "RunLeased",
    "default_ledger_url",
    "hold_run",
    "open_ledger",
    "refuse_if_running",
]


ENV = "SLUICE_LEDGER_URL"
_SHOWN = 120  # characters of a bad URL quoted in an error line


def default_ledger_url() -> str:
    """``$SLUICE_LEDGER_URL``, else ``sqlite:///$SLUICE_HOME/ledger.db``."""
    from sluice.settings import sluice_settings

    settings = sluice_settings()
    return settings.ledger_url or f"sqlite:///{settings.home / 'ledger.db'}"


def check_ledger_url(url: str | None = None, *, name: str = "ledger_url") -> str:
    """The ledger URL to open (``url``, else ``$SLUICE_LEDGER_URL``, else the default under
    ``$SLUICE_HOME``), refused in one line naming its source if it cannot be a ledger.

    A SQLite file outside Sluice's home must be in an existing directory: Sluice does
    not create it (as whichever user happens to run the flow). Nothing is written here.
    """
    from sluice.settings import sluice_settings

    if not url and (configured := sluice_settings().ledger_url):
        url, name = configured, ENV
    if not url:
        return default_ledger_url()
    masked = re.sub(r"(?<=://)([^/:@]*):[^/@]*@", r"\1:***@", url)  # never echo a password
    shown = repr(masked if len(masked) <= _SHOWN else masked[:_SHOWN] + "...")
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.name or path.is_dir():
            raise SluiceInputError(f"{name} {shown}: a directory, not a SQLite file")
        if not path.parent.is_dir():
            raise SluiceInputError(
                f"{name} {shown}: directory {str(path.parent)!r} does not exist; create it first"
            )
    elif not url.startswith(("postgresql://", "postgres://")):
        raise SluiceInputError(
            f"{name} {shown}: expected sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    return url


def open_ledger(url: str | None = None) -> Ledger:
    """Open the ledger at ``url`` (see ``check_ledger_url``): ``sqlite:///path`` or
    ``postgresql://...`` (a flow given a ``LedgerSettings`` block passes the block's URL).
    The schema is upgraded to this Sluice's version on open."""
    from sluice.settings import sluice_settings

    settings = sluice_settings()
    if not url and not settings.ledger_url:
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = check_ledger_url(url)
    import sqlalchemy as sa

    from sluice.ledger.store import SqlLedger

    if url.startswith("sqlite:///"):
        return SqlLedger(sa.URL.create("sqlite", database=url.removeprefix("sqlite:///")))
    return SqlLedger(sa.make_url(url))
