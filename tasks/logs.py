"""Sluice's own log records in the flow-run logs users read (the Prefect UI).

Backend warnings (a memory cgroup still busy, the ``RLIMIT_AS`` fallback, a
supervisor that cannot start) are plain ``logging`` records of the ``sluice``
logger. ``route_sluice_logs`` gives that logger Prefect's API handler, as
``PREFECT_LOGGING_EXTRA_LOGGERS=sluice`` would if it were set before Prefect
is imported; only records made inside a flow or task run (or a thread started
from one with its context) are sent, and no other library's logger is touched.
"""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler


class FlowRunLogHandler(APILogHandler):
    """Prefect's API log handler, silent outside a run instead of warning."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "flow_run_id", None) or FlowRunContext.get() or TaskRunContext.get():
            super().emit(record)


def route_sluice_logs() -> None:
    """Send the ``sluice`` logger's records to the current flow run's logs (idempotent)."""
    logger = logging.getLogger("sluice")
    if not any(isinstance(handler, APILogHandler) for handler in logger.handlers):
        logger.addHandler(FlowRunLogHandler())
