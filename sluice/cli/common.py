"""What every `sluice` command shares: bad input and unreachable backends as one line,
work that ended failed as one summary line (tracebacks only for bugs, or with --debug)."""

from __future__ import annotations

import functools
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

import typer

from sluice.errors import BackendUnavailable, SluiceInputError, WorkIncomplete


class _ExpectedFailures(logging.Filter):
    """Drops Prefect's "Encountered exception" record (with its traceback) when a run ends
    with ``WorkIncomplete``: the run's state and the command's summary line report it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], WorkIncomplete))


_EXPECTED_FAILURES = _ExpectedFailures()
_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
_debug = False


def set_debug(debug: bool) -> None:
    """``sluice --debug``: show tracebacks of expected failures and refused input too."""
    global _debug
    _debug = debug


def fail_on_input_errors(command: Callable) -> Callable:
    """Print ``error: <one line>`` and exit 2 on bad input or an unreachable backend;
    exit 1 with one summary line when the work ran but did not all succeed."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        for name in _RUN_LOGGERS:  # adding twice is a no-op
            logger = logging.getLogger(name)
            (logger.removeFilter if _debug else logger.addFilter)(_EXPECTED_FAILURES)
        try:
            return command(*args, **kwargs)
        except (SluiceInputError, BackendUnavailable) as exc:
            _report(exc, "error")
            raise typer.Exit(2) from None
        except WorkIncomplete as exc:
            _report(exc, "incomplete")
            raise typer.Exit(1) from None

    return wrapper


def _report(error: Exception, label: str) -> None:
    if _debug:
        traceback.print_exception(error, file=sys.stderr)
    print(f"{label}: {error}", file=sys.stderr)


def preflight(kind: str, **settings) -> None:
    """Reach the backend before a Prefect server is started or anything is submitted."""
    from sluice.backends.factory import create_backend

    backend = create_backend(kind, **settings)
    try:
        backend.preflight()
    finally:
        backend.close()


def with_blocks(parameters: dict[str, Any], **blocks: tuple[type, str]) -> dict[str, Any]:
    """``parameters`` with each block-typed parameter's NAME (``key=(BlockClass, flag)``)
    replaced by the saved block, for the flow; a missing block is one line naming ``flag``."""
    from sluice.server import load_block

    loaded: dict[str, Any] = {
        key: load_block(block_type, parameters[key], flag)
        for key, (block_type, flag) in blocks.items()
        if parameters.get(key)
    }
    return {**parameters, **loaded}
