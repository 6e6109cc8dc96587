"""The Nomad backend: JobSpecs become dispatches of parameterized jobs, followed to the end.

- ``submit`` dispatches with ``IdPrefixTemplate`` = the job name and the name as the
  idempotency token: a retried or repeated dispatch returns the job Nomad already
  has, never a second one, and ``<parent>/dispatch-<name>-`` finds it again after a
  restart.
- ``wait`` follows the dispatched *jobs* with one blocking query on the jobs list
  (``?prefix=&index=&wait=``) for all of them; only when a job is dead are its
  allocations read (one request) to classify it. Allocations Nomad replaced (lost
  node, reschedule) do not decide the outcome; the replacement does.
- Credentials stay out of meta: ``put_secrets`` writes a Nomad Variable at
  ``nomad/jobs/<job>`` that the job spec's template turns into task environment. A job
  that requires a credential in meta (the seed's cluster ``pipeline`` and its
  ``nomad_token``) is refused at preflight, saying how to give it otherwise.
- The user's registered parameterized job is dispatched as it is, by name; a sized
  variant ``<job>-<MiB>mib`` is registered only when a JobSpec asks for memory (the STAC
  batch asks only to escalate after an OOM: ``job_memory_bytes`` is where it starts).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import nomad.api.exceptions as nomad_errors

from sluice.backends.nomad import specs
from sluice.backends.nomad.classify import classify
from sluice.backends.nomad.client import NomadApi, NomadSettings
from sluice.errors import SluiceInputError
from sluice.jobs import JobResult, JobSpec, Outcome

_NOT_FOUND = nomad_errors.URLNotFoundNomadException
_CREDENTIAL = re.compile(r"token|secret|password|access_key|credential", re.I)


class NomadBackend:
    """Runs JobSpecs as dispatched Nomad jobs (see the module docstring)."""

    name = "nomad"

    def __init__(
        self,
        settings: NomadSettings | None = None,
        *,
        spec_dir: Path = specs.SPEC_DIR,
        watch_wait: float = 60.0,
        min_interval: float = 0.5,
    ) -> None:
        """
        Args:
            settings: address, region, namespace, token and retry policy (default:
                the nomad CLI's environment variables; a ``NomadCluster`` block's ``settings()``).
            spec_dir: where ``<job>.nomad.json`` specs are registered from.
            watch_wait: seconds one blocking query may wait for a change.
            min_interval: least seconds between two watch queries, so a busy cluster's
                changes are taken in batches instead of one request each.
        """
        settings = settings or NomadSettings.from_environment()
        self.api = NomadApi(settings)
        self.settings = settings
        self.spec_dir = spec_dir
        self.watch_wait = watch_wait
        self.min_interval = min_interval
        self.generic_job = specs.GENERIC_JOB
        self._ids: dict[str, str] = {}
        self._timeouts: dict[str, float] = {}
        self._ready: set[str] = set()
        self._registering = threading.Lock()  # chunk tasks may submit from several threads
        self._reachable = False
        self._kinds: set[str] = set()  # parameterized jobs named to preflight

    # -- preflight and registration -------------------------------------------------------

    def preflight(
        self, kinds: Collection[str] = (), *, meta: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        """Fail fast, before any dispatch: Nomad reachable, token accepted, the parameterized
        jobs ``kinds`` usable.

        The user's registered parameterized job is used as it is; one missing from the
        cluster is registered from ``<spec_dir>/<job>.nomad.json``, and with no such file
        it is a ``SluiceInputError``. ``meta`` names the keys the caller will send each job:
        a key the job requires that nobody sends is refused here, not at the first dispatch.
        """
        if not self._reachable:
            try:
                self.api.call(self.api.client.jobs.get_jobs, prefix="sluice-preflight", attempts=3)
            except nomad_errors.BaseNomadException as error:
                raise self.api.unavailable(error) from None
            self._reachable = True
        for job_id in kinds:
            job = self._base_job(job_id)
            self._kinds.add(job_id)
            if meta is not None and job_id in meta:
                self._check_meta(job, set(meta[job_id]))

    def _check_meta(self, job: dict[str, Any], sent: set[str]) -> None:
        """Every key ``job`` requires is sent by the caller."""
        required = job["ParameterizedJob"].get("MetaRequired") or []
        missing = [key for key in required if key not in sent]
        if not missing:
            return
        hint = ""
        if any(_CREDENTIAL.search(key) for key in missing):
            hint = (
                "; a credential in meta is readable by anyone who can read the job, so Sluice "
                "never sends one: give it to the task from a Nomad Variable (put_secrets) or, "
                "for the ACL token, the task's workload identity"
            )
        raise SluiceInputError(
            f"Nomad job {job['ID']!r} requires meta {', '.join(missing)}, "
            f"which Sluice does not send{hint}"
        )

    def _base_job(self, job_id: str) -> dict[str, Any]:
        """The parameterized job ``job_id``, registered from its spec file if Nomad lacks it."""
        try:
            job = specs.strip_server_fields(self.api.call(self.api.client.job.get_job, job_id))
            registered = True
        except _NOT_FOUND:
            job, registered = self._spec_file(job_id), False
        except nomad_errors.BaseNomadException as error:
            raise self.api.unavailable(error) from None
        if not job.get("ParameterizedJob"):
            raise SluiceInputError(f"Nomad job {job_id!r} is not a parameterized job")
        if not registered:
            self.register(job)
        return job

    def _spec_file(self, job_id: str) -> dict[str, Any]:
        """``<spec_dir>/<job>.nomad.json``, or an HCL ``<job>.nomad`` parsed by the agent."""
        job = specs.load_spec(job_id, self.spec_dir)
        hcl = self.spec_dir / f"{job_id}.nomad"
        if job is None and hcl.exists():
            try:
                job = self.api.call(self.api.client.jobs.parse, hcl.read_text())
            except nomad_errors.BadRequestNomadException as error:
                reason = error.nomad_resp.text.strip().splitlines()[0]
                raise SluiceInputError(f"{hcl}: Nomad cannot parse it: {reason}") from None
        if job is None:
            where = self.settings.namespace or "default"
            raise SluiceInputError(
                f"unknown parameterized Nomad job {job_id!r}: not registered in namespace "
                f"{where!r} and no {job_id}.nomad.json or {job_id}.nomad in {self.spec_dir}"
            )
        if job.get("ID") != job_id:
            raise SluiceInputError(
                f"{self.spec_dir}/{job_id}.nomad*: its job ID is {job.get('ID')!r}, not {job_id!r}"
            )
        return job

    def job_memory_bytes(self, kind: str) -> int | None:
        """The memory a dispatch of parameterized job ``kind`` gets when its JobSpec asks for
        none: the registered job's largest task's (``sluice-job``: the generic job in use)."""
        job_id = self.generic_job if kind == specs.GENERIC_JOB else kind
        return specs.job_memory_mib(self._base_job(job_id)) * 2**20

    def register(self, job: dict[str, Any]) -> None:
        """Register (or update) a job document; Nomad keeps the version if nothing changed."""
        self.api.call(self.api.client.job.register_job, job["ID"], {"Job": job})
        if job.get("ParameterizedJob"):
            self._ready.add(job["ID"])

    def _ensure(self, plan: specs.DispatchPlan) -> None:
        if plan.parent in self._ready:
            return
        with self._registering:
            if plan.parent in self._ready:
                return
            self.preflight()
            base = self._base_job(plan.base)
            self._ready.add(plan.base)
            if plan.parent != plan.base:
                self.register(specs.variant(base, plan.memory_mib, plan.restarts))
                self._copy_secrets(plan.base, plan.parent)

    # -- secrets ----------------------------------------------------------------------------

    def put_secrets(self, secrets: Mapping[str, str]) -> None:
        """Store ``secrets`` as the Variable ``nomad/jobs/<job>`` of every parameterized job
        named to ``preflight`` (none named: the generic job), and of their sized variants.

        The job spec's template renders it into the task environment; nothing
        secret appears in the job, its meta or its logs. The generic ``sluice-job``
        has no template, so its secrets go to ``sluice-job-secrets`` (registered
        here if Nomad lacks it), which runs this backend's plain commands from then on.
        """
        for job_id in sorted(self._kinds or {specs.GENERIC_JOB}):
            self._put_job_secrets(job_id, secrets)

    def _put_job_secrets(self, job_id: str, items: Mapping[str, str]) -> None:
        generic = job_id == specs.GENERIC_JOB
        if generic:
            job_id = specs.GENERIC_SECRETS_JOB
            self._base_job(job_id)
        payload = {"Items": dict(items)}
        for target in [job_id, *self._variants_of(job_id)]:
            self.api.call(self.api.client.variable.create_variable, f"nomad/jobs/{target}", payload)
        if generic:
            self.generic_job = job_id

    def _variants_of(self, job_id: str) -> list[str]:
        return sorted(
            j
            for j in self._ready
            if j.startswith(f"{job_id}-") and re.fullmatch(r"(-\d+mib)?(-r\d+)?", j[len(job_id) :])
        )

    def _copy_secrets(self, base: str, variant: str) -> None:
        try:
            var = self.api.call(self.api.client.variable.get_variable, f"nomad/jobs/{base}")
        except _NOT_FOUND:
            return
        payload = {"Items": var["Items"]}
        self.api.call(self.api.client.variable.create_variable, f"nomad/jobs/{variant}", payload)

    # -- Backend protocol -------------------------------------------------------------------

    def submit(self, jobs: Sequence[JobSpec], *, replace: bool = False) -> list[str]:
        """Dispatch each job once (idempotent by name); ``replace`` purges an earlier one first."""
        plans = [specs.plan(job, self.generic_job) for job in jobs]
        for plan in plans:
            self._ensure(plan)
        earlier = self._dispatched([plan.name for plan in plans]) if replace else {}
        names = []
        for plan in plans:
            for stub in earlier.get(plan.name, []):  # any memory variant
                self._purge(stub["ID"])
            self._ids[plan.name] = self._dispatch(plan)
            if plan.timeout_seconds:
                self._timeouts[plan.name] = plan.timeout_seconds
            names.append(plan.name)
        return names

    def _dispatch(self, plan: specs.DispatchPlan) -> str:
        meta = dict(plan.meta)
        body: dict[str, Any] = {"Meta": meta, "IdPrefixTemplate": plan.name}
        if plan.payload:
            body["Payload"] = base64.b64encode(plan.payload).decode()

        def dispatch() -> dict[str, Any]:
            # The token goes in the query string, where Nomad reads it.
            response = self.api.client.job.request(
                plan.parent,
                "dispatch",
                method="post",
                json=body,
                params={"idempotency_token": plan.name},
            )
            return response.json()

        try:
            return self.api.call(dispatch)["DispatchedJobID"]
        except nomad_errors.BadRequestNomadException as error:
            raise SluiceInputError(
                f"job {plan.name}: Nomad refused the dispatch of {plan.parent!r}: "
                f"{error.nomad_resp.text.strip()}"
            ) from None

    def wait(self, names: Iterable[str], *, timeout: float | None = None) -> Iterator[JobResult]:
        """Yield each job's result as it ends; jobs still running at ``timeout`` are purged."""
        deadline = None if timeout is None else time.monotonic() + timeout
        names = list(dict.fromkeys(names))
        unknown = [n for n in names if n not in self._ids]
        if unknown:
            self._find_all(unknown)
        pending: dict[str, str] = {}
        for name in names:
            if name in self._ids:
                pending[self._ids[name]] = name
            else:
                yield JobResult(name=name, outcome=Outcome.LOST, message="no Nomad job found")
        index, next_expiry = 0, None
        while pending:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            wait = min(w for w in (self.watch_wait, remaining, next_expiry) if w is not None)
            prefix = os.path.commonprefix(list(pending))
            stubs, index = self.api.blocking(
                self.api.client.jobs, params={"prefix": prefix}, index=index, wait=wait
            )
            listed = {stub["ID"]: stub for stub in stubs}
            next_expiry, now = None, time.time()
            for job_id, name in list(pending.items()):
                stub = listed.get(job_id)
                limit = self._timeouts.get(name)
                left = stub["SubmitTime"] / 1e9 + limit - now if stub and limit else None
                if stub is None:
                    message = f"Nomad job {job_id} disappeared (purged or garbage-collected)"
                    result = JobResult(name=name, outcome=Outcome.LOST, message=message)
                elif stub["Status"] == "dead":
                    result = self._result(name, job_id, stopped=stub["Stop"])
                elif left is not None and left <= 0:
                    self._purge(job_id)
                    message = f"ran longer than its {limit}s timeout_seconds"
                    result = JobResult(name=name, outcome=Outcome.TIMEOUT, message=message)
                else:
                    if left is not None:
                        next_expiry = left if next_expiry is None else min(next_expiry, left)
                    continue
                del pending[job_id]
                yield result
            if pending and self.min_interval:
                time.sleep(self.min_interval)
        for job_id, name in pending.items():
            self._purge(job_id)
            yield JobResult(
                name=name, outcome=Outcome.TIMEOUT, message=f"still running after {timeout}s"
            )

    def _result(self, name: str, job_id: str, *, stopped: bool) -> JobResult:
        try:
            allocations = self.api.call(self.api.client.job.get_allocations, job_id)
        except _NOT_FOUND:
            message = f"Nomad job {job_id} was garbage-collected before its allocations were read"
            return JobResult(name=name, outcome=Outcome.LOST, message=message)
        return classify(name, allocations, stopped=stopped)

    def _allocations(self, job_id: str) -> list[dict[str, Any]]:
        try:
            return self.api.call(self.api.client.job.get_allocations, job_id)
        except _NOT_FOUND:
            return []

    def logs(self, name: str, *, streams: Sequence[str] = ("stdout", "stderr")) -> str:
        """What the job's last allocation printed on ``streams``, task by task ("" if unknown)."""
        job_id = self.job_id(name)
        allocations = self._allocations(job_id) if job_id else []
        if not allocations:
            return ""
        alloc = max(allocations, key=lambda a: a["CreateIndex"])
        parts = []
        for task in sorted(alloc.get("TaskStates") or {}):
            for stream in streams:
                try:
                    text = self.api.call(
                        self.api.client.client.stream_logs.stream,
                        alloc["ID"],
                        task,
                        stream,
                        plain=True,
                    )
                except (_NOT_FOUND, nomad_errors.BadRequestNomadException):
                    continue
                parts.append(text)
        return "".join(parts)

    def delete(self, names: Iterable[str]) -> None:
        """Stop and purge the named jobs; unknown names and 404s are fine."""
        for name in names:
            self._purge(self._ids.pop(name, None) or self._find(name))

    def close(self) -> None:
        self.api.close()

    # -- lookups ----------------------------------------------------------------------------

    def job_id(self, name: str) -> str | None:
        """The Nomad job ID dispatched for ``name`` (looked up in Nomad if not known here)."""
        return self._ids.get(name) or self._find(name)

    def active_count(self, prefix: str = "") -> int:
        """Dispatched jobs named ``prefix``... that are not dead (admission control).

        One jobs list per parameterized job this backend uses (``<job>/dispatch-<prefix>``),
        so jobs dispatched by an earlier orchestrator count too.
        """
        parents = sorted(self._ready)
        queries = [f"{parent}/dispatch-{prefix}" for parent in parents] or [""]
        count = 0
        for query in queries:
            for stub in self.api.call(self.api.client.jobs.get_jobs, prefix=query):
                parent = stub.get("ParentID")
                name = specs.dispatched_name(parent, stub["ID"]) if parent else None
                if name is not None and name.startswith(prefix) and stub["Status"] != "dead":
                    count += 1
        return count

    def _find(self, name: str) -> str | None:
        """The newest dispatched job for ``name`` (``<job>/dispatch-<name>-<unix>-<hex>``)."""
        return self._find_all([name]).get(name)

    def _find_all(self, names: Sequence[str]) -> dict[str, str]:
        """The newest dispatched job of each of ``names`` (remembered for later calls)."""
        ids = {name: stubs[-1]["ID"] for name, stubs in self._dispatched(names).items()}
        self._ids.update(ids)
        return ids

    def _dispatched(self, names: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every dispatched job of ``names``, of any parameterized job, oldest first (one list)."""
        wanted = set(names)
        found: dict[str, list[dict[str, Any]]] = {}
        for stub in self.api.call(self.api.client.jobs.get_jobs):
            parent = stub.get("ParentID")
            name = specs.dispatched_name(parent, stub["ID"]) if parent else None
            if name in wanted:
                found.setdefault(name, []).append(stub)
        for stubs in found.values():
            stubs.sort(key=lambda stub: stub["CreateIndex"])
        return found

    def _purge(self, job_id: str | None) -> None:
        if job_id is None:
            return
        with contextlib.suppress(_NOT_FOUND):
            self.api.call(self.api.client.job.deregister_job, job_id, purge=True)
