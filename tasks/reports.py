"""Reporting steps shared by every flow: progress, tables and summaries as Prefect artifacts."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
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
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PROGRESS_INTERVAL_SECONDS = 2.0  # the artifact: one API call per push
LINE_INTERVAL_SECONDS = 30.0  # not on a terminal: a progress line this often


class _Rate(ProgressColumn):
    """Items per second, as rich estimates it."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.1f}/s" if task.speed else "-/s", style="progress.data.speed")


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA -"
    whole = int(seconds)
    return f"ETA {whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Terminal:
    """Progress shown to a person: a live bar per reporter (counts by outcome, rate, ETA)
    when the console is a terminal, else one line per reporter every ``every`` seconds
    through ``log`` (a flow's run logger: the lines reach the flow-run log too)."""

    def __init__(
        self,
        log: Callable[[str], object],
        *,
        console: Console | None = None,
        every: float = LINE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console or Console()
        self.log, self.every, self.clock = log, every, clock
        self._bars: Progress | None = None
        if self.console.is_terminal:
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[outcomes]}"),
                _Rate(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
        self._open: set[int] = set()
        self._live = False
        # per key: started, done when started, when the last line was shown and its count
        self._lines: dict[int, tuple[float, int, float, int]] = {}
        self._ids = itertools.count()

    def add(self, description: str, total: int, done: int) -> int:
        """Start showing one reporter's work; its key."""
        if self._bars is not None:
            key = int(self._bars.add_task(description, total=total, completed=done, outcomes=""))
        else:
            key = next(self._ids)
            now = self.clock()
            self._lines[key] = (now, done, now, done)
        self._open.add(key)
        return key

    def show(self, key: int, reporter: ProgressReporter, *, last: bool = False) -> None:
        """Show ``reporter``'s counts: the bar at once (started at the first count), a line
        at most every ``every`` s and only if the count moved, or now when ``last``."""
        outcomes = reporter.outcome_text()
        if self._bars is not None:
            if not self._live:
                self._bars.start()
                self._live = True
            self._bars.update(TaskID(key), completed=reporter.done, outcomes=outcomes)
        else:
            started, done_then, shown_at, shown_done = self._lines[key]
            now = self.clock()
            if last or (now - shown_at >= self.every and reporter.done != shown_done):
                self._lines[key] = (started, done_then, now, reporter.done)
                rate = (reporter.done - done_then) / (now - started) if now > started else 0.0
                left = (reporter.total - reporter.done) / rate if rate > 0 else None
                counts = f" ({outcomes})" if outcomes else ""
                eta = "" if last else f", {_eta(left)}"
                self.log(
                    f"{reporter.description}: {reporter.done} / {reporter.total}{counts}, "
                    f"{rate:.2f}/s{eta}"
                )
        if last and key in self._open:
            self._open.discard(key)
            if self._live and not self._open:
                self._bars.stop()  # type: ignore[union-attr]
                self._live = False


class ProgressReporter:
    """Done of total as a Prefect progress artifact (``<description>: <done> / <total>``),
    and on ``terminal`` for a person watching.

    The one progress implementation of every flow. Advanced (or set) from any thread;
    the artifact is pushed at most every ``interval`` seconds, since each push is one API
    call, and at once when the work completes. Use it as a context manager (or call
    ``finish``) so the final count is pushed and the terminal's bar closed.
    """

    def __init__(
        self,
        total: int,
        description: str,
        *,
        done: int = 0,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        terminal: Terminal | None = None,
    ) -> None:
        self.total, self.done, self.description = max(total, 0), done, description
        self.outcomes: Counter[str] = Counter()
        self.interval, self.terminal = interval, terminal
        self._lock = threading.Lock()
        self._pushed, self._pushed_at = done, time.monotonic()
        self._artifact_id = cast(
            UUID, create_progress_artifact(self._percent(), description=self._text())
        )
        self._key = terminal.add(description, self.total, done) if terminal else None

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *_: object) -> None:
        self.finish()

    def advance(self, count: int = 1, *, outcome: str | None = None) -> None:
        """``count`` more items are done (ended ``outcome``, when given)."""
        with self._lock:
            self.done += count
            if outcome is not None:
                self.outcomes[outcome] += count
        self._push()

    def update(self, done: int) -> None:
        """``done`` items are done in all (for work counted elsewhere, e.g. a tracker)."""
        with self._lock:
            self.done = done
        self._push()

    def finish(self) -> None:
        """Push the final count now (once; later calls do nothing)."""
        self._push(force=True)
        if self.terminal is not None and self._key is not None:
            with self._lock:
                self.terminal.show(self._key, self, last=True)
                self._key = None

    def outcome_text(self) -> str:
        """Counts by outcome, most first: ``7 succeeded, 1 failed``."""
        return ", ".join(f"{n} {outcome}" for outcome, n in self.outcomes.most_common())

    def _percent(self) -> float:
        return 100.0 * min(self.done, self.total) / self.total if self.total else 100.0

    def _text(self) -> str:
        return f"{self.description}: {self.done} / {self.total}"

    def _push(self, *, force: bool = False) -> None:
        with self._lock:
            if self.terminal is not None and self._key is not None:
                self.terminal.show(self._key, self)
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
