"""What every `sluice` command shares: bad input and unreachable backends as one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import typer

from sluice.errors import BackendUnavailable, SluiceInputError, WorkIncomplete


def fail_on_input_errors(command: Callable) -> Callable:
    """Print ``error: <one line>`` and exit 2 on bad input or an unreachable backend;
    exit 1 when the work ran but did not all succeed."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            from sluice.ledger import check_ledger_url

            check_ledger_url()  # a bad $SLUICE_LEDGER_URL is refused before anything starts
            return command(*args, **kwargs)
        except (SluiceInputError, BackendUnavailable) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        except WorkIncomplete as exc:
            print(f"incomplete: {exc}", file=sys.stderr)
            raise typer.Exit(1) from None

    return wrapper


def preflight(kind: str, **settings) -> None:
    """Reach the backend before a Prefect server is started or anything is submitted."""
    from sluice.backends.factory import create_backend

    backend = create_backend(kind, **settings)
    try:
        backend.preflight()
    finally:
        backend.close()
