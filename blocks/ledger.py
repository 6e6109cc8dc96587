"""The ``LedgerSettings`` block: where the ledger lives (PostgreSQL for in-cluster flows)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from sluice.errors import SluiceInputError
from sluice.ledger import Ledger, check_ledger_url, open_ledger


class LedgerSettings(Block):
    """The ledger's store: a SQLite file (embedded default) or a PostgreSQL database.

    A flow run in a Kubernetes work pool can be rescheduled onto another node and its
    local disk is not durable: point the ledger at PostgreSQL there. The password is
    kept as a secret and joined to the URL only when the ledger is opened.
    """

    _block_type_name = "Sluice Ledger"
    _description = "The ledger URL (sqlite:///PATH or postgresql://USER@HOST/DB) and password."

    url: str = Field(
        description="sqlite:///PATH or postgresql://USER@HOST:PORT/DB (no password here)."
    )
    password: SecretStr | None = Field(default=None, description="The database password.")

    def resolved_url(self) -> str:
        """The URL with the password in it (never log this)."""
        if self.password is None or not self.url.startswith(("postgresql://", "postgres://")):
            return self.url
        parts = urlsplit(self.url)
        user, _, host = parts.netloc.rpartition("@")
        secret = quote(self.password.get_secret_value(), safe="")
        return urlunsplit(parts._replace(netloc=f"{user.split(':')[0]}:{secret}@{host}"))

    def open(self) -> Ledger:
        check_ledger_url(self.url, name=f"LedgerSettings block {self._block_document_name!r}")
        return open_ledger(self.resolved_url())


def open_flow_ledger(ledger_url: str | None, ledger_block: LedgerSettings | None) -> Ledger:
    """The ledger a flow was given: its ``ledger_block``, else ``ledger_url`` (else
    ``$SLUICE_LEDGER_URL``, else SQLite under ``$SLUICE_HOME``); both is one line."""
    if ledger_block is None:
        return open_ledger(ledger_url)
    if ledger_url:
        raise SluiceInputError("ledger_url and ledger_block: give one, not both")
    return ledger_block.open()
