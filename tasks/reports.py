"""Reporting steps shared by every flow: progress, tables and summaries as Prefect artifacts."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast
from uuid import UUID

from prefect import task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE


class ProgressReporter:
    """A Prefect progress artifact advanced from many threads, updated at most every ``interval`` s.

    Progress artifacts cost one API call per update, so items are counted
    locally and pushed in batches.
    """

    def __init__(self, total: int, description: str, *, interval: float = 2.0) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.interval = interval
        self._lock = threading.Lock()
        self._pushed_at = 0.0
        # A sync call returns the id (prefect's async_dispatch annotates "or a coroutine").
        self._artifact_id = cast(
            UUID, create_progress_artifact(progress=0.0, description=description)
        )

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
            now = time.monotonic()
            if now - self._pushed_at < self.interval and self.done < self.total:
                return
            self._pushed_at = now
            progress = 100.0 * min(self.done, self.total) / self.total
        update_progress_artifact(artifact_id=self._artifact_id, progress=progress)

    def finish(self) -> None:
        update_progress_artifact(artifact_id=self._artifact_id, progress=100.0)


@task(cache_policy=NO_CACHE)
def publish_table(key: str, rows: Sequence[Mapping[str, Any]], description: str) -> None:
    """A table artifact (``key`` groups versions of the same report in the UI)."""
    create_table_artifact(key=key, table=[dict(r) for r in rows], description=description)


@task(cache_policy=NO_CACHE)
def publish_markdown(key: str, markdown: str, description: str) -> None:
    """A markdown artifact."""
    create_markdown_artifact(key=key, markdown=markdown, description=description)


def artifact_key(*parts: str) -> str:
    """A valid artifact key (lowercase letters, digits, dashes) from free text."""
    text = "-".join(parts).lower()
    cleaned = "".join(c if c.isalnum() else "-" for c in text)
    return "-".join(filter(None, cleaned.split("-")))[:100]
