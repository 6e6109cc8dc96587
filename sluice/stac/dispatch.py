"""Job specs for the autoeval parameterized jobs, on any backend.

A dispatch of Nomad parameterized job ``P`` with meta ``M`` is a ``JobSpec``
whose ``template`` is ``{"nomad": {"job": P, "meta": M}}``: the Nomad backend
dispatches it (the job spec in ``infra/nomad/`` says what runs); other backends
run ``command`` with each meta key as ``NOMAD_META_<key>`` (what Nomad itself
gives a dispatched task). Secrets are never meta: jobs get credentials from
their environment.
"""

from __future__ import annotations

import hashlib
import re

from sluice.jobs import JobSpec

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def slug(text: str, length: int) -> str:
    return _NOT_DNS.sub("-", text.lower()).strip("-")[:length].strip("-") or "x"


def job_name(kind: str, batch: str, key: str, attempt: int) -> str:
    """A DNS-1123 name unique per (kind, batch, key, attempt), readable where it can be."""
    digest = hashlib.sha1(f"{batch}\0{key}".encode()).hexdigest()[:8]
    return f"{kind}-{slug(batch, 14)}-{slug(key, 24)}-{digest}-{attempt}"


def dispatch_spec(
    *,
    name: str,
    parameterized_job: str,
    meta: dict[str, str],
    command: list[str],
    env: dict[str, str] | None = None,
    memory_bytes: int | None = None,
) -> JobSpec:
    """One dispatch of ``parameterized_job`` with ``meta``."""
    return JobSpec(
        name=name,
        command=command,
        env={**(env or {}), **{f"NOMAD_META_{k}": v for k, v in meta.items()}},
        memory_bytes=memory_bytes,
        labels={"sluice/parameterized-job": parameterized_job},
        template={"nomad": {"job": parameterized_job, "meta": dict(meta)}},
    )
