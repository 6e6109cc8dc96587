"""Parameterized job specs (``infra/nomad/*.nomad.json``) and how a JobSpec maps onto them.

A ``JobSpec`` becomes a dispatch of a parameterized job:

- ``template={"nomad": {"job": "pipeline", "meta": {...}, "payload": "..."}}`` dispatches
  that job with that meta (the seed's pipeline and stage contracts); ``command`` is
  then only descriptive, the job spec defines what runs.
- anything else dispatches the generic ``sluice-job``: its one task runs
  ``/bin/sh -c "$NOMAD_META_sluice_cmd"``, the shell-quoted ``cd workdir && exec env
  K=V... command``; once secrets were put for it (``put_secrets`` after
  ``preflight(["sluice-job"])``, or with no kind named),
  ``sluice-job-secrets`` instead: the same job plus a template rendering its Variable
  (on Nomad a template whose Variable is missing blocks the task, so the plain job has none).

Nomad cannot change resources per dispatch, so ``memory_bytes`` (and ``backoff_limit``)
dispatch a variant ``<job>-<MiB>mib[-r<N>]``: the same spec with its largest task's
``MemoryMB`` set (sidecars such as the seed's ``persist-logs`` keep theirs; and N in-place
restarts of a failed task), registered on first use. A JobSpec without them dispatches
the registered job itself.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.errors import SluiceInputError
from sluice.jobs import JobSpec
from sluice.resources import shipped

SPEC_DIR = shipped("sluice.infra", "nomad")
GENERIC_JOB = "sluice-job"
GENERIC_SECRETS_JOB = "sluice-job-secrets"
DEFAULT_TASK_MEMORY_MIB = 300  # Nomad's, for a task without a memory figure
_SERVER_FIELDS = (
    "Status",
    "StatusDescription",
    "Version",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "SubmitTime",
    "Stable",
)


@dataclass(frozen=True)
class DispatchPlan:
    """What one JobSpec dispatches: the parameterized job (maybe a variant) and meta."""

    name: str
    base: str
    memory_mib: int | None = None
    restarts: int = 0
    meta: dict[str, str] = field(default_factory=dict)
    payload: bytes | None = None
    timeout_seconds: float | None = None

    @property
    def parent(self) -> str:
        return variant_id(self.base, self.memory_mib, self.restarts)


def variant_id(base: str, memory_mib: int | None, restarts: int) -> str:
    """``<job>[-<MiB>mib][-r<restarts>]``: the parameterized job a resized dispatch uses."""
    return (
        base + (f"-{memory_mib}mib" if memory_mib else "") + (f"-r{restarts}" if restarts else "")
    )


def plan(spec: JobSpec, generic: str = GENERIC_JOB) -> DispatchPlan:
    """The dispatch for ``spec`` (see the module docstring); ``generic`` runs a plain command."""
    memory_mib = math.ceil(spec.memory_bytes / 2**20) if spec.memory_bytes else None
    nomad = (spec.template or {}).get("nomad")
    if nomad is not None:
        job = nomad.get("job") if isinstance(nomad, dict) else None
        meta = nomad.get("meta") or {}
        if not isinstance(job, str) or not job:
            raise SluiceInputError(f"job {spec.name}: template.nomad.job must name a job")
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise SluiceInputError(f"job {spec.name}: template.nomad.meta must map to strings")
        payload = nomad.get("payload")
        data = payload.encode() if isinstance(payload, str) else payload
    else:
        job, meta, data = generic, {"sluice_cmd": shell_line(spec)}, None
    return DispatchPlan(
        spec.name, job, memory_mib, spec.backoff_limit, dict(meta), data, spec.timeout_seconds
    )


def shell_line(spec: JobSpec) -> str:
    """The generic job's command line: ``[cd DIR && ]exec [env K=V ...] argv``."""
    line = "exec "
    if spec.env:
        line += "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in spec.env.items()) + " "
    line += shlex.join(spec.command)
    return f"cd {shlex.quote(spec.workdir)} && {line}" if spec.workdir else line


def load_spec(job_id: str, spec_dir: Path = SPEC_DIR) -> dict[str, Any] | None:
    """The ``Job`` document of ``infra/nomad/<job_id>.nomad.json``, or None if absent."""
    path = spec_dir / f"{job_id}.nomad.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["Job"]


def strip_server_fields(job: dict[str, Any]) -> dict[str, Any]:
    """A job read back from Nomad, minus the fields the server sets."""
    return {k: v for k, v in job.items() if k not in _SERVER_FIELDS}


def task_memory_mib(task: dict[str, Any]) -> int:
    """A task's memory as Nomad gives it (300 MiB when its spec says none)."""
    return (task.get("Resources") or {}).get("MemoryMB") or DEFAULT_TASK_MEMORY_MIB


def job_memory_mib(job: dict[str, Any]) -> int:
    """A job's memory: its largest task's (the work; sidecars are smaller)."""
    return max(task_memory_mib(t) for g in job["TaskGroups"] for t in g["Tasks"])


def variant(base: dict[str, Any], memory_mib: int | None, restarts: int) -> dict[str, Any]:
    """``base`` with ``memory_mib`` for its largest task(s) and ``restarts`` in-place
    restarts of a failure.

    The Variable path its templates read is renamed along with the job.
    """
    job = copy.deepcopy(base)
    variant = variant_id(job["ID"], memory_mib, restarts)
    job["ID"] = job["Name"] = variant
    largest = job_memory_mib(job)
    for group in job["TaskGroups"]:
        if restarts:
            group["RestartPolicy"] = {**(group.get("RestartPolicy") or {}), "Attempts": restarts}
            group["RestartPolicy"].setdefault("Mode", "fail")
        for task in group["Tasks"]:
            resources = task.setdefault("Resources", {})
            if memory_mib and task_memory_mib(task) == largest:
                resources["MemoryMB"] = memory_mib
                resources.pop("MemoryMaxMB", None)
            for template in task.get("Templates") or []:
                template["EmbeddedTmpl"] = re.sub(
                    rf'"nomad/jobs/{re.escape(base["ID"])}"',
                    f'"nomad/jobs/{variant}"',
                    template.get("EmbeddedTmpl") or "",
                )
    return job


_DISPATCHED = re.compile(r"^/dispatch-(?P<name>.+)-\d+-[0-9a-f]{8}$")


def dispatched_name(parent: str, job_id: str) -> str | None:
    """``name`` of Nomad's dispatched ID ``<parent>/dispatch-<name>-<unix>-<8 hex>``."""
    if not job_id.startswith(parent):
        return None
    match = _DISPATCHED.match(job_id[len(parent) :])
    return match.group("name") if match else None
