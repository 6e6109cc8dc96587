"""Create Job objects idempotently: create, adopt on 409, or replace (delete, await, create)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from sluice.backends.kubernetes.client import KubeClient, api_message
from sluice.backends.kubernetes.watch import LISTED, JobWatch
from sluice.errors import BackendUnavailable, SluiceInputError

Obj = dict[str, Any]
CHUNK_LABEL = "sluice/chunk"
DELETE_WAIT_SECONDS = 300.0


@dataclass(frozen=True)
class Placed:
    """A Job that exists (or, in a dry run, would): ours or adopted."""

    name: str
    job: Obj | None  # the stored object; None in a dry run that found the name taken
    adopted: bool

    @property
    def uid(self) -> str | None:
        return self.job["metadata"].get("uid") if self.job else None

    @property
    def chunk(self) -> str | None:
        labels = (self.job or {}).get("metadata", {}).get("labels") or {}
        return labels.get(CHUNK_LABEL)


def chunk_selector(chunks: Iterable[str | None]) -> str | None:
    """A label selector matching every Job of these chunks; None (all Jobs) if one has none."""
    values = set(chunks)
    if None in values or not values:
        return None
    labels = {value for value in values if value is not None}
    if len(labels) == 1:
        return f"{CHUNK_LABEL}={labels.pop()}"
    return f"{CHUNK_LABEL} in ({','.join(sorted(labels))})"


class JobPlacer:
    """Creates manifests concurrently through one client."""

    def __init__(self, kube: KubeClient, *, dry_run: bool = False, workers: int = 8) -> None:
        self.kube = kube
        self.dry_run = dry_run
        self.workers = workers

    def place(self, manifests: list[Obj], *, replace: bool = False) -> list[Placed]:
        """Create every manifest; existing Jobs are adopted, or replaced if ``replace``."""
        if replace:
            self.remove([m["metadata"]["name"] for m in manifests], wait=True)
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda m: self._place_one(m, replace=replace), manifests))

    def remove(self, names: list[str], *, wait: bool = False) -> None:
        """Delete Jobs (background propagation, unknown names ignored); ``wait`` until gone."""
        with ThreadPoolExecutor(self.workers) as pool:
            deleted = [job for job in pool.map(self._delete_one, names) if job]
        if wait and deleted and not self.dry_run:
            self._await_gone(deleted)

    def _place_one(self, manifest: Obj, *, replace: bool) -> Placed:
        name = manifest["metadata"]["name"]
        for _ in range(3):
            try:
                job = self.kube.call_json(
                    "create",
                    "jobs.batch",
                    self.kube.batch.create_namespaced_job,
                    self.kube.namespace,
                    manifest,
                    dry_run="All" if self.dry_run else None,
                )
                return Placed(name, job, adopted=False)
            except ApiException as exc:
                if exc.status == 422 or exc.status == 400:
                    raise SluiceInputError(
                        f"Job {name}: the API server rejected the manifest: {api_message(exc)}"
                    ) from None
                if exc.status != 409:
                    raise
            if self.dry_run:
                return Placed(name, None, adopted=True)
            if replace:  # still there (its delete's answer was lost, or it is going): again
                self.remove([name], wait=True)
                continue
            try:
                job = self.kube.call_json(
                    "get",
                    "jobs.batch",
                    self.kube.batch.read_namespaced_job,
                    name,
                    self.kube.namespace,
                )
                return Placed(name, job, adopted=True)
            except ApiException as exc:
                if exc.status != 404:  # deleted between our create and get: create again
                    raise
        raise BackendUnavailable(f"Job {name} keeps appearing and disappearing; giving up")

    def _delete_one(self, name: str) -> Obj | None:
        try:
            return self.kube.call_json(
                "delete",
                "jobs.batch",
                self.kube.batch.delete_namespaced_job,
                name,
                self.kube.namespace,
                propagation_policy="Background",
                dry_run="All" if self.dry_run else None,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _await_gone(self, deleted: list[Obj]) -> None:
        """One watch until every deleted Job (by uid) has disappeared."""
        # The API answers a delete with the Job, or with a Status naming it (``details``).
        identities = [
            job.get("details") if job.get("kind") == "Status" else job["metadata"]
            for job in deleted
        ]
        uids = {who["name"]: who.get("uid") for who in identities if who and who.get("name")}
        if not uids:
            return
        selector = chunk_selector(
            (who.get("labels") or {}).get(CHUNK_LABEL) for who in identities if who
        )
        remaining = dict(uids)
        watch = JobWatch(self.kube, selector)
        for kind, payload in watch.events(time.monotonic() + DELETE_WAIT_SECONDS):
            if kind == LISTED:
                present = {(j["metadata"]["name"], j["metadata"].get("uid")) for j in payload}
                remaining = {n: u for n, u in remaining.items() if (n, u) in present}
            elif kind == "DELETED":
                meta = payload["metadata"]
                if remaining.get(meta["name"]) == meta.get("uid"):
                    del remaining[meta["name"]]
            if not remaining:
                return
        raise BackendUnavailable(
            f"Jobs still being deleted after {DELETE_WAIT_SECONDS:g} s: {', '.join(remaining)}"
        )
