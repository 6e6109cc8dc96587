"""Every ``SLUICE_*`` environment variable, declared and validated in one place.

======================== ============================================= ==================
Variable                 Meaning                                       Default
======================== ============================================= ==================
SLUICE_HOME              server database, ledger, logs, batch state    ``~/.sluice``
SLUICE_SERVER_PORT       the embedded Prefect server's port (1-65535)  ``4200``
SLUICE_LEDGER_URL        ``sqlite:///PATH`` or ``postgresql://...``     SQLite in the home
SLUICE_WATERSHEDS_ROOT   directory holding watershed batches           ``$SLUICE_HOME/watersheds``
SLUICE_LOCAL_CGROUPS     ``on`` or ``off``: memory cgroups for local    detect
                         jobs
======================== ============================================= ==================

A bad value is one line naming the variable (the CLI exits 2 before anything starts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sluice.errors import SluiceInputError

LEDGER_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")


class SluiceSettings(BaseSettings):
    """The ``SLUICE_*`` environment, typed."""

    model_config = SettingsConfigDict(env_prefix="SLUICE_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".sluice")
    server_port: int = Field(default=4200, ge=1, le=65535)
    ledger_url: str | None = None
    watersheds_root: Path | None = None
    local_cgroups: Literal["on", "off"] | None = None

    @field_validator("home", "watersheds_root", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("empty: unset it or give a directory")
        return value

    @field_validator("home", "watersheds_root")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("ledger_url")
    @classmethod
    def _ledger_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(LEDGER_SCHEMES):
            raise ValueError("expected sqlite:///PATH or postgresql://...")
        return value or None

    @field_validator("local_cgroups", mode="before")
    @classmethod
    def _switch(cls, value: str | None) -> str | None:
        return (value.strip().lower() or None) if isinstance(value, str) else value


def sluice_settings() -> SluiceSettings:
    """The current ``SLUICE_*`` settings; a bad value raises one line naming the variable."""
    try:
        return SluiceSettings()
    except ValidationError as error:
        first = error.errors()[0]
        name = f"SLUICE_{str(first['loc'][0]).upper()}"
        given = str(first.get("input", ""))[:80]
        message = first["msg"].removeprefix("Value error, ")
        raise SluiceInputError(f"{name}={given!r}: {message}") from None


def sluice_home() -> Path:
    """``$SLUICE_HOME`` or ``~/.sluice``: the server database, ledger and logs."""
    return sluice_settings().home
