"""What the double was asked (a request counter) and what it does to some requests (faults)."""

from __future__ import annotations

import random
import threading
from collections import Counter

FAULT_KINDS = ("429", "500", "reset", "reset-after")
WATCH_BREAKS = ("reset", "gone")
RequestKey = tuple[str, str, bool]


class RequestLog:
    """Thread-safe counts of requests by (method, path kind, watch?).

    Path kinds: ``discovery``, ``jobs`` (the collection), ``jobs/{name}``,
    ``jobs/{name}/status``, ``pods``, ``pods/{name}``, ``pods/{name}/log``, ``namespaces``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[RequestKey] = Counter()

    def record(self, method: str, kind: str, watch: bool) -> None:
        with self._lock:
            self._counts[(method, kind, watch)] += 1

    def count(
        self, method: str | None = None, kind: str | None = None, watch: bool | None = None
    ) -> int:
        """How many requests matched every given criterion."""
        with self._lock:
            return sum(
                n
                for (m, k, w), n in self._counts.items()
                if method in (None, m) and kind in (None, k) and watch in (None, w)
            )

    def snapshot(self) -> dict[RequestKey, int]:
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()

    @property
    def total(self) -> int:
        return self.count()


class Faults:
    """Decides, per resource request, whether to answer with an injected fault.

    ``429``: Too Many Requests with ``Retry-After: 1``; ``500``: Internal Server Error;
    ``reset``: the connection is reset before the request is acted on;
    ``reset-after``: the request is acted on, then the connection is reset unanswered.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rate = 0.0
        self.kinds: tuple[str, ...] = ("429", "500", "reset")
        self._random = random.Random()
        self.injected: Counter[str] = Counter()

    def set(self, rate: float, kinds: tuple[str, ...], seed: int | None) -> None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown or not kinds or not 0 <= rate <= 1:
            raise ValueError(f"faults: rate in [0, 1] and kinds from {FAULT_KINDS}")
        with self._lock:
            self.rate, self.kinds = rate, tuple(kinds)
            self._random = random.Random(seed)

    def draw(self) -> str | None:
        with self._lock:
            if self.rate <= 0 or self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[kind] += 1
            return kind


class WatchBreaks:
    """Watch streams to break on purpose, each after a chosen number of events (FIFO).

    ``reset``: the connection is reset mid-stream (a dropped connection or a restarted API
    server); ``gone``: an ``ERROR`` event with ``410 Gone`` ends the stream (the watch
    cache lost the window), as a real API server may send after any event.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, list[tuple[int, str]]] = {}

    def add(self, resource: str, after_events: int, how: str) -> None:
        if how not in WATCH_BREAKS or after_events < 0:
            raise ValueError(f"watch break: after_events >= 0 and how in {WATCH_BREAKS}")
        with self._lock:
            self._pending.setdefault(resource, []).append((after_events, how))

    def take(self, resource: str) -> tuple[int, str] | None:
        """The break for the next watch on ``resource``, if one is pending."""
        with self._lock:
            pending = self._pending.get(resource)
            return pending.pop(0) if pending else None
