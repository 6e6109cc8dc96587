"""Steps of the Karabo flow: estimate, simulate on a backend, stage, verify, clean."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from sluice.backends.base import Backend
from sluice.backends.factory import BackendKind
from sluice.errors import WorkIncomplete
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobResult, JobSpec, Outcome
from sluice.karabo.areas import Area
from sluice.karabo.estimate import Estimate
from sluice.karabo.ingest import Fate, Staged, clean_staging, stage, wait_for_ingestor
from sluice.karabo.run_inputs import Prepared
from sluice.karabo.settings import KaraboSettings
from sluice.ledger.base import Ledger
from sluice.resources import shipped

STANDIN_SIMULATION = shipped("sluice.examples", "karabo", "standin_simulation.py")
JOB_TEMPLATE = shipped("sluice.infra", "kubernetes", "karabo", "job-template.yaml")
WORKLOAD = "karabo-ska-mid-aastar"
POD_TMP = "/tmp"
LOG_TAIL_CHARS = 20_000  # of a failed simulation's log, kept in the report directory


class SimulationFailed(WorkIncomplete):
    """The simulation job did not succeed; its log says why."""


class IngestFailed(WorkIncomplete):
    """The ingestor failed some products, or did not handle them in time."""


@task(cache_policy=NO_CACHE)
def estimate_resources(
    settings: KaraboSettings, volume_bytes: int, found: Estimate, report_dir: Path
) -> None:
    """Publish the estimate (artifact and report); ``prepare`` already refused what cannot fit."""
    rows = [
        *found.rows(),
        {"quantity": "temporary volume available", "value": f"{volume_bytes:,} B"},
    ]
    create_table_artifact(
        key="karabo-estimate", table=rows, description=f"Karabo resource estimate {settings.obs_id}"
    )
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / f"{settings.obs_id}-estimate.json").write_text(
        json.dumps({**found.model_dump(), "volume_bytes": volume_bytes}, indent=2) + "\n"
    )


def job_name(settings: KaraboSettings) -> str:
    """A DNS-1123 name unique per OBS_ID (so a rerun of the same slot finds its own job)."""
    slug = "".join(c if c.isalnum() else "-" for c in settings.obs_id.lower()).strip("-")
    return f"karabo-{slug}"[:63].rstrip("-")


def simulation_job(prepared: Prepared, workdir: Path, backend: BackendKind, image: str) -> JobSpec:
    """The simulation as one job: the Karabo image on clusters, the stand-in locally."""
    settings, found = prepared.settings, prepared.estimate
    local = backend is BackendKind.LOCAL
    tmpdir = str(workdir / ".tmp") if local else POD_TMP
    common: dict[str, Any] = {
        "name": job_name(settings),
        "env": {**settings.as_env(out_dir=str(workdir)), "TMPDIR": tmpdir},
        "memory_bytes": prepared.memory_limit_bytes,
        "cpu": prepared.cpu,
        "timeout_seconds": prepared.simulation_timeout_seconds,
        "labels": {"sluice/workload": WORKLOAD},
        "annotations": {"sluice/obs-id": settings.obs_id},
    }
    if local:
        command = [sys.executable, str(STANDIN_SIMULATION), *settings.product_flags()]
        return JobSpec(command=command, workdir=str(workdir), **common)
    template = with_temporary_volume(yaml.safe_load(JOB_TEMPLATE.read_text()), found)
    prepared.placement.apply(template["spec"]["template"]["spec"])
    command = ["python", "-m", "karabo.workflows.SRCNet_SKA-MID_AAstar", *settings.product_flags()]
    return JobSpec(
        command=command,
        image=image,
        template=template,
        memory_request_bytes=prepared.memory_request_bytes,
        cpu_limit=prepared.cpu_limit,
        **common,
    )


def with_temporary_volume(template: dict[str, Any], found: Estimate) -> dict[str, Any]:
    """Mount a per-pod PVC sized by the estimate at ``/tmp`` (the workflow's TemporaryDirectory).

    A generic ephemeral volume: Kubernetes creates the claim with the pod and deletes it with
    the pod, so the products not selected for ingest never outlive the run.
    """
    size = f"{math.ceil(found.scratch_bytes / 2**20)}Mi"
    claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    pod = template["spec"]["template"]["spec"]
    pod.setdefault("volumes", []).append(
        {"name": "tmp", "ephemeral": {"volumeClaimTemplate": {"spec": claim}}}
    )
    pod["containers"][0].setdefault("volumeMounts", []).append(
        {"name": "tmp", "mountPath": POD_TMP}
    )
    return template


@task(cache_policy=NO_CACHE)
def simulate(
    backend: Backend,
    ledger: Ledger,
    run: str,
    job: JobSpec,
    workdir: Path,
    report_dir: Path,
    obs_id: str,
) -> JobResult:
    """Run the simulation job (recorded in the ledger) and fail the step unless it succeeded;
    then the end of the job's log is kept in ``report_dir`` and the one-line reason names it."""
    (workdir / ".tmp").mkdir(parents=True, exist_ok=True)
    planned = [Planned(item="simulation", job=job)]
    result = run_jobs(
        backend, ledger, run, WORKLOAD, planned, timeout=job.timeout_seconds, replace=True
    )["simulation"]
    if result.outcome is not Outcome.SUCCEEDED:
        report_dir.mkdir(parents=True, exist_ok=True)
        tail = report_dir / f"{obs_id}-simulation.log"
        tail.write_text(backend.logs(job.name)[-LOG_TAIL_CHARS:])
        raise SimulationFailed(
            f"simulation job {job.name} did not succeed ({result.reason}); "
            f"the end of its log: {tail}"
        )
    return result


@task(cache_policy=NO_CACHE)
def stage_products(
    settings: KaraboSettings, workdir: Path, staging: Area, items: list[Staged]
) -> None:
    """Hand each product and then its ``.meta`` to the ingestor's staging area."""
    stage(settings, workdir, staging, items)
    get_run_logger().info("staged %s in %s", [i.rel for i in items], staging.url)


@task(cache_policy=NO_CACHE)
def verify_ingest(
    items: list[Staged],
    processed: Area,
    failed: Area,
    timeout: float,
    report_dir: Path,
    obs_id: str,
) -> dict[str, Fate]:
    """Wait for the ingestor's verdict on every product; failures fail the run."""
    fates = wait_for_ingestor(items, processed, failed, timeout=timeout)
    rows = [{"product": i.rel, "fate": fates[i].value} for i in items]
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / f"{obs_id}-ingest.json").write_text(json.dumps(rows, indent=2) + "\n")
    create_table_artifact(key="karabo-ingest", table=rows, description=f"Ingest of {obs_id}")
    bad = [row for row in rows if row["fate"] != Fate.PROCESSED]
    if bad:
        lines = "\n".join(f"| `{r['product']}` | {r['fate']} |" for r in bad)
        create_markdown_artifact(
            key="karabo-ingest-failures",
            markdown=f"# Products not ingested ({obs_id})\n\n"
            f"| product | fate |\n|---|---|\n{lines}\n",
            description=f"Products the ingestor failed or did not handle ({obs_id})",
        )
        raise IngestFailed(
            f"{len(bad)} of {len(rows)} product(s) not ingested: "
            + ", ".join(f"{r['product']} ({r['fate']})" for r in bad)
            + f"; see {report_dir / f'{obs_id}-ingest.json'}"
        )
    return {row["product"]: Fate(row["fate"]) for row in rows}


@task(cache_policy=NO_CACHE)
def clean_up(staging: Area, items: list[Staged], workdir: Path) -> None:
    """Empty what this run left in staging and delete its temporary data."""
    clean_staging(staging, items)
    shutil.rmtree(workdir, ignore_errors=True)
