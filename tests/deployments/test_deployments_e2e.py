"""prefect.yaml: every flow deployed on both pools, the hourly Karabo schedule, runs by a worker."""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client

from sluice import blocks
from tests.core.sweep_workload import write_template
from tests.deployments.conftest import (
    IMAGE_NAME,
    IMAGE_TAG,
    REPO,
    prefect,
    run_deployment,
    work_one_round,
)

pytestmark = pytest.mark.slow


def flow_entrypoints() -> set[str]:
    """``sluice.flows.<module>.<function>`` of every flow defined in ``flows/``."""
    found = set()
    for path in (REPO / "flows").glob("*.py"):
        module = importlib.import_module(f"sluice.flows.{path.stem}")
        found |= {
            f"{module.__name__}.{attr}"
            for attr, value in vars(module).items()
            if isinstance(value, Flow) and value.fn.__module__ == module.__name__
        }
    return found


async def _deployments():
    async with get_client() as client:
        return await client.read_deployments()


async def _flow_run(run_id: str):
    async with get_client() as client:
        run = await client.read_flow_run(uuid.UUID(run_id))
        flow = await client.read_flow(run.flow_id)
        return run, flow


def test_every_flow_has_a_process_and_a_kubernetes_deployment(deployed):
    by_pool: dict[str, set[str]] = {}
    for deployment in asyncio.run(_deployments()):
        by_pool.setdefault(deployment.work_pool_name, set()).add(deployment.entrypoint)
    expected = flow_entrypoints()

    assert {
        "sluice.flows.karabo.karabo_simulation",
        "sluice.flows.sweep.tiered_index_sweep",
    } <= expected
    assert by_pool["sluice-process"] >= expected
    assert by_pool["sluice-kubernetes"] >= expected


def test_the_hourly_karabo_deployment_replaces_the_cronjob(deployed):
    (hourly,) = [
        d
        for d in asyncio.run(_deployments())
        if d.name == "hourly" and d.entrypoint == "sluice.flows.karabo.karabo_simulation"
    ]
    (schedule,) = hourly.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == (
        "0 * * * *",
        "UTC",
        True,
    )
    assert hourly.global_concurrency_limit.limit == 1
    assert hourly.concurrency_options.collision_strategy == "CANCEL_NEW"
    assert "obs_id" not in hourly.parameters  # derived from each run's scheduled start time
    assert hourly.work_pool_name == "sluice-kubernetes"
    assert hourly.job_variables["image"] == f"{IMAGE_NAME}:{IMAGE_TAG}"


def test_a_worker_completes_a_karabo_run_named_after_its_scheduled_time(
    deployed, tmp_path, sluice_home
):
    areas = {n: tmp_path / n for n in ("staging", "processed", "failed")}
    for path in areas.values():
        path.mkdir()
    run_id = run_deployment(
        "karabo-simulation/local",
        "imaging_npixel=16",
        "num_time_stamps=2",
        'products=["dirty", "visibility"]',
        *(f"{name}={path}" for name, path in areas.items()),
        f"scratch_dir={tmp_path / 'scratch'}",
        f"report_dir={tmp_path / 'reports'}",
    )
    work_one_round({"SLUICE_HOME": str(sluice_home)})

    run, _ = asyncio.run(_flow_run(run_id))
    assert run.state.is_completed(), run.state
    stamp = run.expected_start_time.strftime("%Y%m%dT%H%M%S")
    prefix = f"{stamp}_SKAMID_Karabo_test_hourly_"
    assert sorted(p.name for p in (areas["processed"] / "testing").iterdir()) == [
        f"{prefix}dirty.fits",
        f"{prefix}dirty.fits.meta",
        f"{prefix}measurements.ms",
        f"{prefix}measurements.ms.meta",
    ]
    meta = json.loads((areas["processed"] / "testing" / f"{prefix}dirty.fits.meta").read_text())
    assert meta["meta"]["obs_id"] == f"{stamp}_SKAMID_Karabo_test_hourly"


def test_a_worker_completes_a_sweep_run(deployed, tmp_path: Path, sluice_home):
    done_log = tmp_path / "done.log"
    done_log.touch()
    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(done_log))
    run_id = run_deployment(
        "tiered-index-sweep/local",
        f"template_path={template}",
        "namespace=deploy-test",
        "job_name_prefix=d",
        "indexes=[0, 1, 2]",
        "tier=0",
        "schedule_start_gi=0.0625",
        "quiet=true",
        f"ledger_url=sqlite:///{tmp_path / 'ledger.db'}",
        f"report_dir={tmp_path / 'reports'}",
    )
    work_one_round({"SLUICE_HOME": str(sluice_home)})

    run, flow = asyncio.run(_flow_run(run_id))
    assert flow.name == "tiered-index-sweep"
    assert run.state.is_completed(), run.state
    assert sorted(done_log.read_text().split()) == ["0", "1", "2"]


async def _block_types():
    async with get_client() as client:
        return {b.slug for b in await client.read_block_types()}


def test_block_register_registers_sluices_block_types(prefect_api):
    output = prefect("block", "register", "-m", "sluice.blocks")

    classes = [getattr(blocks, n) for n in blocks.__all__]
    assert all(issubclass(c, Block) for c in classes)
    registered = asyncio.run(_block_types())
    for cls in classes:
        assert cls.get_block_type_slug() in registered, output


async def _deployment(name: str):
    async with get_client() as client:
        return await client.read_deployment_by_name(name)


def test_cluster_deployments_build_and_push_the_image_once(deployed, docker_engine):
    image = f"{IMAGE_NAME}:{IMAGE_TAG}"
    (build,) = docker_engine.builds
    assert docker_engine.tags[image] == build.image_id
    assert build.dockerfile == "Dockerfile"
    # the context is the repository, cut down by .dockerignore to what the image needs
    assert {"Dockerfile", "pyproject.toml", "scripts/image_install.sh", "flows/sweep.py"} <= (
        build.files
    )
    assert "infra/nomad/pipeline.nomad.json" in build.files
    assert not {f for f in build.files if f.startswith((".venv/", "tests/", ".git/"))}
    assert docker_engine.pushed == [image]

    cluster = asyncio.run(_deployment("karabo-simulation/hourly"))
    local = asyncio.run(_deployment("karabo-simulation/local"))
    assert cluster.job_variables["image"] == image
    assert "image" not in (local.job_variables or {})


def test_cluster_pods_and_jobs_use_the_kustomization_namespace(deployed):
    kustomization = yaml.safe_load((REPO / "infra/kubernetes/kustomization.yaml").read_text())
    namespace = kustomization["namespace"]
    for name in ("karabo-simulation/hourly", "tiered-index-sweep/cluster"):
        deployment = asyncio.run(_deployment(name))
        assert deployment.job_variables["namespace"] == namespace
        assert deployment.parameters["namespace"] == namespace
    ingest = asyncio.run(_deployment("chunkedgraph-ingest/cluster"))
    assert ingest.job_variables["namespace"] == namespace


async def _kubernetes_deployments():
    async with get_client() as client:
        return [
            d for d in await client.read_deployments() if d.work_pool_name == "sluice-kubernetes"
        ]


def test_every_cluster_deployment_takes_its_ledger_from_a_block(deployed):
    cluster = asyncio.run(_kubernetes_deployments())
    assert len(cluster) >= 8
    reference = {"$ref": {"block_document_slug": "sluice-ledger/sluice-ledger"}}
    with_ledger = 0
    for deployment in cluster:
        parameters = deployment.parameters or {}
        assert "SLUICE_LEDGER_URL" not in deployment.job_variables["env"], deployment.name
        assert "ledger_url" not in parameters  # nothing overrides the block
        if "ledger_block" in deployment.parameter_openapi_schema["properties"]:
            assert parameters["ledger_block"] == reference, deployment.name  # a block picker
            with_ledger += 1
    assert with_ledger == 5  # sweep, stac, watershed runs, karabo (cluster and hourly)
    template = json.loads((REPO / "infra/kubernetes/base-job-template.json").read_text())
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    home = template["variables"]["properties"]["env"]["default"]["SLUICE_HOME"]
    assert {"name": "sluice-home", "emptyDir": {}} in pod["volumes"]
    assert {"name": "sluice-home", "mountPath": home} in pod["containers"][0]["volumeMounts"]
