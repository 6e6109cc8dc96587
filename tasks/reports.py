"""Reporting steps shared by every flow: progress, tables and summaries as Prefect artifacts."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from prefect import task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

PROGRESS_INTERVAL_SECONDS = 2.0


class ProgressReporter:
    """Done of total as a Prefect progress artifact (``<description>: <done> / <total>``).

    The one progress implementation of every flow. Advanced (or set) from any thread;
    pushed at most every ``interval`` seconds, since each push is one API call, and at
    once when the work completes.
    """

    def __init__(
        self,
        total: int,
        description: str,
        *,
        done: int = 0,
        interval: float = PROGRESS_INTERVAL_SECONDS,
    ) -> None:
        self.total, self.done, self.description = max(total, 0), done, description
        self.interval = interval
        self._lock = threading.Lock()
        self._pushed, self._pushed_at = done, time.monotonic()
        self._artifact_id = create_progress_artifact(self._percent(), description=self._text())

    def advance(self, count: int = 1) -> None:
        """``count`` more items are done."""
        with self._lock:
            self.done += count
        self._push()

    def update(self, done: int) -> None:
        """``done`` items are done in all (for work counted elsewhere, e.g. a tracker)."""
        with self._lock:
            self.done = done
        self._push()

    def finish(self) -> None:
        """Push the final count now."""
        self._push(force=True)

    def _percent(self) -> float:
        return 100.0 * min(self.done, self.total) / self.total if self.total else 100.0

    def _text(self) -> str:
        return f"{self.description}: {self.done} / {self.total}"

    def _push(self, *, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if self.done == self._pushed:
                return
            if not force and now - self._pushed_at < self.interval and self.done < self.total:
                return
            self._pushed, self._pushed_at = self.done, now
            percent, text = self._percent(), self._text()
        update_progress_artifact(self._artifact_id, percent, text)


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
