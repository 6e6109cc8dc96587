"""One list-then-watch over the Jobs of a label selector: the only way Sluice waits.

The watch resumes from the last ``resourceVersion`` it saw (bookmarks
included) whenever the server closes it or the connection breaks, and relists
when the server answers ``410 Gone`` (the version was compacted away). The
number of requests is O(reconnects), independent of how many Jobs match.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator
from typing import Any, cast

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3 import BaseHTTPResponse

from sluice.backends.kubernetes.client import NETWORK_ERRORS, REQUEST_TIMEOUT, KubeClient
from sluice.errors import BackendUnavailable

Obj = dict[str, Any]
LISTED = "LISTED"  # pseudo-event carrying the full list of matching Jobs
MAX_WATCH_SECONDS = 300
MAX_BROKEN_WATCHES = 30
LIST_PAGE = 500


class Gone(Exception):
    """The watch's resourceVersion is too old: relist."""


class JobWatch:
    """Events for the Jobs matching ``selector`` in the client's namespace."""

    def __init__(self, kube: KubeClient, selector: str | None) -> None:
        self.kube = kube
        self.selector = selector

    def events(self, deadline: float | None = None) -> Iterator[tuple[str, Any]]:
        """``(type, job)`` pairs until ``deadline`` (a ``time.monotonic`` value) passes.

        Each full list (the first, and each after ``410 Gone``) yields
        ``(LISTED, [jobs])``; the watch then yields ``ADDED``/``MODIFIED``/``DELETED``.
        """
        while True:
            version, jobs = self._list()
            yield LISTED, jobs
            broken = 0
            while True:
                remaining = math.inf if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    for kind, job in self._watch(version, remaining):
                        version = job["metadata"].get("resourceVersion") or version
                        broken = 0
                        if kind != "BOOKMARK":
                            yield kind, job
                except Gone:
                    break
                except ApiException as exc:
                    if exc.status == 410:  # some servers refuse the watch itself with 410
                        break
                    raise
                except NETWORK_ERRORS as exc:
                    broken += 1
                    if broken > MAX_BROKEN_WATCHES:
                        raise BackendUnavailable(
                            f"Kubernetes API at {self.kube.host}: watch on jobs keeps breaking"
                            f" ({type(exc).__name__})"
                        ) from None
                    time.sleep(random.uniform(0, min(5.0, 0.05 * 2**broken)))

    def _list(self) -> tuple[str, list[Obj]]:
        jobs: list[Obj] = []
        token = None
        while True:
            page = self.kube.call_json(
                "list",
                "jobs.batch",
                self.kube.batch.list_namespaced_job,
                self.kube.namespace,
                label_selector=self.selector,
                limit=LIST_PAGE,
                _continue=token,
            )
            jobs.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return page["metadata"]["resourceVersion"], jobs

    def _watch(self, version: str, remaining: float) -> Iterator[tuple[str, Obj]]:
        seconds = max(1, math.ceil(min(MAX_WATCH_SECONDS, remaining)))
        # Not the model the client's annotation names: raw, as _preload_content=False asks.
        response = cast(
            BaseHTTPResponse,
            self.kube.call(
                "watch",
                "jobs.batch",
                self.kube.batch.list_namespaced_job,
                self.kube.namespace,
                label_selector=self.selector,
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=seconds,
                _preload_content=False,
                _request_timeout=(REQUEST_TIMEOUT[0], seconds + 15),
            ),
        )
        try:
            for line in iter_resp_lines(response):
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise ConnectionError(f"watch error {obj.get('code')}: {obj.get('message')}")
                yield kind, obj
        finally:
            response.release_conn()
