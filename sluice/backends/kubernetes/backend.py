"""``KubernetesBackend``: the ``Backend`` protocol on Kubernetes Jobs, watched not polled.

Modes:

- ``per-index``: one Job per ``JobSpec`` (the seed's orchestrator).
- ``indexed``: the specs of one ``submit`` call are grouped (see
  ``sluice.backends.kubernetes.indexed``) into one Indexed Job per group; results
  are still one ``JobResult`` per spec name.

Every Job (and its pods) of one ``submit`` call carries the label
``sluice/chunk=<digest of the call's names>``; ``wait`` opens ONE list+watch
over the chunks of the names it waits for.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from kubernetes.client.exceptions import ApiException
from urllib3 import BaseHTTPResponse

from sluice.backends.kubernetes.classify import completion_index, latest_pod
from sluice.backends.kubernetes.client import ClusterAccess, KubeClient, RbacDenied
from sluice.backends.kubernetes.indexed import group, indexed_manifest, indexed_name, items_of
from sluice.backends.kubernetes.jobs import CHUNK_LABEL, JobPlacer, Placed, chunk_selector
from sluice.backends.kubernetes.manifests import in_namespace, job_manifest
from sluice.backends.kubernetes.tracking import Tracker
from sluice.backends.kubernetes.watch import LISTED, JobWatch
from sluice.errors import SluiceInputError
from sluice.jobs import JobResult, JobSpec, Outcome

log = logging.getLogger(__name__)
Obj = dict[str, Any]
MODE_LABEL = "sluice/mode"
Mode = Literal["per-index", "indexed"]
TAIL_LINES = 2000  # a failed attempt's log kept in the ledger: at most its last lines...
TAIL_BYTES = 64 << 10  # ...and bytes


@dataclass(frozen=True)
class Placement:
    """Where one spec runs: a Job, and its completion index there (0 for per-index)."""

    job_name: str
    index: int
    uid: str | None
    chunk: str | None
    indexed: bool
    dry_run: bool = False


def submission_labels(names: Sequence[str], mode: Mode) -> dict[str, str]:
    """The labels every Job of one ``submit`` of ``names`` carries (its chunk, its mode)."""
    labels = {CHUNK_LABEL: hashlib.sha1("\n".join(sorted(names)).encode()).hexdigest()[:12]}
    if mode == "indexed":
        labels[MODE_LABEL] = "indexed"
    return labels


def build_manifests(
    jobs: Sequence[JobSpec],
    *,
    mode: Mode,
    labels: dict[str, str],
    parallelism: int | None = None,
    namespace: str | None = None,
) -> list[tuple[Obj, list[str]]]:
    """The Job objects a ``submit`` of ``jobs`` creates, each with the spec names it runs.

    Pure (no cluster): ``--dry-run print`` shows exactly these.
    """
    if mode == "per-index":
        return [(job_manifest(job, labels=labels, namespace=namespace), [job.name]) for job in jobs]
    return [
        (
            in_namespace(
                indexed_manifest(indexed_name(g), g, parallelism=parallelism, labels=labels),
                namespace,
            ),
            [job.name for job in g],
        )
        for g in group(list(jobs))
    ]


class KubernetesBackend:
    """Runs ``JobSpec``s as Kubernetes Jobs in one namespace.

    Args:
        namespace: Namespace of the Jobs (default: the kubeconfig context's, else ``default``).
        mode: ``per-index`` (one Job per spec) or ``indexed`` (one Indexed Job per group).
        access: Cluster connection (kubeconfig, context, in-cluster); default: auto.
        dry_run: ``server`` (or True) sends the creates with ``dryRun=All``: nothing is stored.
        parallelism: Pods at once per Indexed Job (default: the template's, else all).
        workers: Concurrent create/delete requests.
    """

    name = "kubernetes"

    def __init__(
        self,
        namespace: str | None = None,
        *,
        mode: Mode = "per-index",
        access: ClusterAccess | None = None,
        dry_run: bool | Literal["none", "server"] = False,
        parallelism: int | None = None,
        workers: int = 8,
    ) -> None:
        if mode not in ("per-index", "indexed"):
            raise SluiceInputError(f"--mode {mode!r}: expected per-index or indexed")
        if dry_run not in (True, False, "none", "server"):
            raise SluiceInputError(f"--dry-run {dry_run!r}: the backend takes none or server")
        self.mode = mode
        self.dry_run = dry_run in (True, "server")
        self.parallelism = parallelism
        access = access or ClusterAccess()
        self.kube = KubeClient(access, namespace or access.default_namespace())
        self.placer = JobPlacer(self.kube, dry_run=self.dry_run, workers=workers)
        self._lock = threading.Lock()  # chunk tasks share one backend from several threads
        self._placements: dict[str, Placement] = {}
        self._ended: set[str] = set()
        self._checked = False
        self._tails = True  # False once the Role turned out not to grant get pods/log

    @property
    def namespace(self) -> str:
        return self.kube.namespace

    def preflight(self, kinds: Collection[str] = ()) -> None:
        """Check reachability, credentials and read permissions; ``BackendUnavailable`` if not.
        Every kind of job is a Job from its template: none needs setting up."""
        self.kube.preflight()
        self._checked = True

    def put_secrets(self, secrets: Mapping[str, str]) -> None:
        """Refused: on Kubernetes a job's secrets come from a Secret its Job template names
        (``envFrom``/``secretKeyRef``), created by the cluster's operator, not by a flow."""
        raise SluiceInputError(
            f"--backend kubernetes: secrets ({', '.join(sorted(secrets))}) reach jobs from a "
            "Secret the Job template names (envFrom), not from the flow"
        )

    # -- submit ---------------------------------------------------------------------------

    def submit(self, jobs: Sequence[JobSpec], *, replace: bool = False) -> list[str]:
        if not jobs:
            return []
        if not self._checked:
            self.preflight()
        names = [job.name for job in jobs]
        fresh = jobs
        if self.mode == "indexed" and not (replace or self.dry_run):
            fresh = self._adopt_indexed(jobs)
        built = build_manifests(
            fresh,
            mode=self.mode,
            labels=submission_labels(names, self.mode),
            parallelism=self.parallelism,
            namespace=self.namespace,
        )
        manifests = [manifest for manifest, _ in built]
        for placed, (_, items) in zip(
            self.placer.place(manifests, replace=replace), built, strict=True
        ):
            self._record(placed, items)
        return names

    def _adopt_indexed(self, jobs: Sequence[JobSpec]) -> list[JobSpec]:
        """Adopt specs some existing Indexed Job already runs (a resumed flow); the rest.

        One list of this namespace's Sluice Indexed Jobs: a resumed chunk may be a
        subset of an earlier one, so adoption by Job name alone would run items twice.
        """
        listing = self.kube.call_json(
            "list",
            "jobs.batch",
            self.kube.batch.list_namespaced_job,
            self.namespace,
            label_selector=f"{MODE_LABEL}=indexed",
        )
        wanted = {job.name for job in jobs}
        for existing in listing.get("items") or []:
            items = items_of(existing) or []
            if wanted.intersection(items):
                self._record(Placed(existing["metadata"]["name"], existing, adopted=True), items)
                wanted.difference_update(items)
        return [job for job in jobs if job.name in wanted]

    def _record(self, placed: Placed, items: list[str]) -> None:
        indexed = self.mode == "indexed"
        if indexed and placed.adopted and placed.job is not None:
            items = items_of(placed.job) or items
        with self._lock:
            for index, item in enumerate(items):
                self._ended.discard(item)
                self._placements[item] = Placement(
                    job_name=placed.name,
                    index=index,
                    uid=placed.uid,
                    chunk=placed.chunk,
                    indexed=indexed,
                    dry_run=self.dry_run,
                )

    # -- wait -----------------------------------------------------------------------------

    def wait(self, names: Iterable[str], *, timeout: float | None = None) -> Iterator[JobResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        trackers: dict[str, Tracker] = {}
        for name in dict.fromkeys(names):
            placement = self._placements.get(name) or self._find(name)
            if placement is None:
                yield self._end(JobResult(name=name, outcome=Outcome.LOST, message="no such Job"))
            elif placement.dry_run:
                yield self._end(
                    JobResult(
                        name=name,
                        outcome=Outcome.CANCELLED,
                        message="dry run (server): validated by the API server, nothing stored",
                    )
                )
            else:
                tracker = trackers.get(placement.job_name)
                if tracker is None:
                    tracker = trackers[placement.job_name] = Tracker(
                        placement.job_name, placement.uid, placement.indexed, self._tail
                    )
                tracker.add(placement.index, name)
        if not trackers:
            return
        chunks = {self._placements[n].chunk for t in trackers.values() for n in t.items.values()}
        watch = JobWatch(self.kube, chunk_selector(chunks))
        for kind, payload in watch.events(deadline):
            if kind == LISTED:
                listed = {job["metadata"]["name"]: job for job in payload}
                for tracker in list(trackers.values()):
                    job = listed.get(tracker.job_name)
                    if job is None or not tracker.owns(job):
                        results = tracker.vanished("not found")
                    else:
                        results = tracker.update(job, self._pods)
                    yield from map(self._end, results)
            else:
                tracker = trackers.get(payload["metadata"]["name"])
                if tracker is None or not tracker.owns(payload):
                    continue
                if kind == "DELETED":
                    results = tracker.vanished("was deleted before it finished")
                else:
                    results = tracker.update(payload, self._pods)
                yield from map(self._end, results)
            trackers = {name: t for name, t in trackers.items() if not t.done}
            if not trackers:
                return
        expired = [r for t in trackers.values() for r in t.expire(timeout, self._pods)]
        self.placer.remove(list(trackers))
        yield from map(self._end, expired)

    def _end(self, result: JobResult) -> JobResult:
        self._ended.add(result.name)
        return result

    def _find(self, name: str) -> Placement | None:
        """A per-index Job this backend did not submit (another process did): adopt it."""
        if self.mode == "indexed":
            return None
        try:
            job = self.kube.call_json(
                "get", "jobs.batch", self.kube.batch.read_namespaced_job, name, self.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        self._record(Placed(name, job, adopted=True), [name])
        return self._placements[name]

    def _pods(self, job: Obj) -> list[Obj]:
        """The pods of one Job, by its selector (one request)."""
        match = ((job.get("spec") or {}).get("selector") or {}).get("matchLabels") or {
            "job-name": job["metadata"]["name"]
        }
        listing = self.kube.call_json(
            "list",
            "pods",
            self.kube.core.list_namespaced_pod,
            self.namespace,
            label_selector=",".join(f"{k}={v}" for k, v in match.items()),
        )
        return listing.get("items") or []

    # -- logs, delete, close ---------------------------------------------------------------

    def logs(self, name: str) -> str:
        placement = self._placements.get(name) or self._find(name)
        if placement is None or placement.dry_run:
            return ""
        job: Obj = {"metadata": {"name": placement.job_name}, "spec": {}}
        if placement.uid:
            job["spec"]["selector"] = {
                "matchLabels": {"batch.kubernetes.io/controller-uid": placement.uid}
            }
        pods = self._pods(job)
        if placement.indexed:
            pods = [p for p in pods if completion_index(p) == placement.index]
        if (pod := latest_pod(pods)) is None:
            return ""
        return self._pod_log(pod, None).decode("utf-8", errors="replace")

    def _tail(self, pod: Obj) -> str:
        """The last ``TAIL_BYTES`` of a pod's log (of its last ``TAIL_LINES``): one GET.
        Without ``get pods/log`` no tail is kept (one warning); the wait goes on."""
        if not self._tails:
            return ""
        try:
            return self._pod_log(pod, TAIL_LINES).decode("utf-8", errors="replace")
        except RbacDenied as exc:
            self._tails = False
            log.warning("%s; failed jobs' log tails are not kept", exc)
            return ""

    def _pod_log(self, pod: Obj, tail_lines: int | None) -> bytes:
        """A pod's log (its job's container's): all of it, or of its last ``tail_lines``
        at most ``TAIL_BYTES`` (the end); empty if it has none (yet, or any more)."""
        main = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name")
        query = {} if tail_lines is None else {"tail_lines": tail_lines}
        try:
            # Not the model the client's annotation names: raw, as _preload_content=False asks.
            response = cast(
                BaseHTTPResponse,
                self.kube.call(
                    "get",
                    "pods/log",
                    self.kube.core.read_namespaced_pod_log,
                    pod["metadata"]["name"],
                    self.namespace,
                    container=main,  # the job's container, also when the template adds sidecars
                    _preload_content=False,
                    **query,
                ),
            )
        except ApiException as exc:
            if exc.status in (400, 404):  # container not started yet, or pod gone
                return b""
            raise
        try:
            if tail_lines is None:
                return response.data
            kept = bytearray()
            for chunk in response.stream(TAIL_BYTES):
                kept += chunk
                del kept[:-TAIL_BYTES]
            return bytes(kept)
        finally:
            response.release_conn()

    def delete(self, names: Iterable[str]) -> None:
        wanted = set(names)
        with self._lock:
            placements = dict(self._placements)
        doomed: list[str] = []
        for job_name in {p.job_name for n, p in placements.items() if n in wanted}:
            items = [n for n, p in placements.items() if p.job_name == job_name]
            if all(n in wanted or n in self._ended for n in items):
                doomed.append(job_name)
        if self.mode == "per-index":
            doomed += [n for n in wanted if n not in placements]
        if doomed:
            self.placer.remove(sorted(set(doomed)))

    def close(self) -> None:
        self.kube.close()
