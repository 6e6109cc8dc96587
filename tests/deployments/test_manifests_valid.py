"""Everything Sluice sends a cluster passes the strict Kubernetes 1.30-1.37 schemas.

The Kubernetes double validates every object it receives (tests/k8s_double/schemas.py, the
kubernetes-validate schemas) and answers 422 Invalid as the API server does; the backend
tests run every Job through it. Here: the double's refusal itself, and each kind of object
Sluice builds (per-index and Indexed Jobs, the Karabo Job, the Karabo scratch PVC, the RBAC,
the work pool's base job template as the prefect-kubernetes worker renders it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration
from sluice.tasks.karabo import simulation_job

from sluice.backends.factory import BackendKind
from sluice.backends.kubernetes.indexed import indexed_manifest
from sluice.backends.kubernetes.manifests import job_manifest
from sluice.jobs import JobSpec
from sluice.karabo.run_inputs import check_placement, prepare
from sluice.karabo.settings import KaraboSettings
from tests.k8s_double import start_double
from tests.k8s_double.schemas import VERSIONS, validate
from tests.k8s_double.status import ApiError

REPO = Path(__file__).resolve().parents[2]
GROUPS = {
    "batch/v1": "batch",
    "v1": "",
    "rbac.authorization.k8s.io/v1": "rbac.authorization.k8s.io",
}


def check(obj: dict) -> None:
    """Raise the double's 422 if ``obj`` fails a schema."""
    name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
    validate(obj, obj["kind"], obj["apiVersion"], GROUPS[obj["apiVersion"]], name)


def spec(i: int, **extra) -> JobSpec:
    return JobSpec(
        name=f"sweep-index-{i}",
        command=["python3", "-c", "print(1)"],
        env={"INDEX": str(i)},
        memory_bytes=2**30,
        cpu=0.5,
        timeout_seconds=600,
        labels={"wetlands/index": str(i)},
        **extra,
    )


def test_versions_are_the_ones_users_run() -> None:
    assert VERSIONS[0] == "1.30" and VERSIONS[-1] == "1.37" and len(VERSIONS) == 8


def test_the_double_answers_422_for_an_object_a_real_api_server_refuses(tmp_path) -> None:
    """Sent raw, as kubectl or kubernetes_asyncio (the Prefect worker's client) would send it."""
    double = start_double(kubelet="instant", work_dir=tmp_path / "double")
    url = f"{double.url}/apis/batch/v1/namespaces/{double.namespace}/jobs"
    try:
        job = job_manifest(spec(0))
        job["spec"]["template"]["spec"]["containers"][0]["memoryLimit"] = "1Gi"  # no such field
        answer = httpx.post(url, json=job)
        assert answer.status_code == 422
        status = answer.json()
        assert (status["kind"], status["reason"]) == ("Status", "Invalid")
        (cause,) = status["details"]["causes"]
        assert cause["field"] == "spec.template.spec.containers[0]"
        assert "memoryLimit" in cause["message"]
        job["spec"]["template"]["spec"]["containers"][0].pop("memoryLimit")
        job["spec"]["backoffLimit"] = "six"  # a wrong type
        answer = httpx.post(url, json=job)
        assert answer.status_code == 422 and "spec.backoffLimit" in answer.text
        assert double.jobs() == []
        job["spec"]["backoffLimit"] = 0
        assert httpx.post(url, json=job).status_code == 201
    finally:
        double.close()


def test_per_index_and_indexed_jobs_are_valid() -> None:
    check(job_manifest(spec(0), labels={"app.kubernetes.io/managed-by": "sluice"}))
    template = yaml.safe_load((REPO / "examples/sweep/job.yaml").read_text())
    check(job_manifest(spec(1, template=template)))
    check(indexed_manifest("sweep-indexed", [spec(i) for i in range(5)], parallelism=2))


def test_the_karabo_job_and_its_scratch_volume_are_valid(tmp_path) -> None:
    settings = KaraboSettings(obs_id="20261130T090000_SKAMID_Karabo_test_hourly")
    prepared = prepare(  # the real job's sizes: requests 64Gi/16, limits 128Gi/32
        settings,
        staging=None,
        processed=None,
        failed=None,
        ingestor="standin",
        verify_timeout_seconds=60.0,
        scratch=tmp_path,
        scratch_volume="1Ti",
        backend="kubernetes",
        namespace="sluice",
        min_memory="64Gi",
        memory_limit="128Gi",
        cpu=16.0,
        cpu_limit=32.0,
        placement=check_placement(None, None, None),
        simulation_timeout_seconds=3600.0,
        report_dir=tmp_path / "report",
        ledger_url=None,
    )
    job = simulation_job(prepared, tmp_path, BackendKind.KUBERNETES, "karabo:1")
    check(job_manifest(job))
    (pvc,) = yaml.safe_load_all((REPO / "infra/kubernetes/karabo/tmp-pvc.yaml").read_text())
    check(pvc)


def test_rbac_as_kustomize_renders_it_is_valid() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "infra/kubernetes")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    assert {o["kind"] for o in objects} >= {"ServiceAccount", "Role", "RoleBinding"}
    for obj in objects:
        check(obj)


def test_the_flow_run_job_the_worker_renders_is_valid() -> None:
    template = json.loads((REPO / "infra/kubernetes/base-job-template.json").read_text())

    async def render() -> KubernetesWorkerJobConfiguration:
        # no block references in the values: the client is never called
        async with PrefectClient("http://127.0.0.1:9/api") as unused:
            return await KubernetesWorkerJobConfiguration.from_template_and_values(
                template, {"image": "registry.example/sluice:0.1.0"}, client=unused
            )

    configuration = asyncio.run(render())
    configuration.prepare_for_flow_run(FlowRun(flow_id=uuid.uuid4(), name="brave-otter"))
    job = configuration.job_manifest
    check(job)
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "sluice"


def test_a_schema_failure_is_an_api_error_with_causes() -> None:
    job = job_manifest(spec(0))
    job["spec"]["template"]["spec"]["completions"] = 1  # a Job field put in the pod spec
    with pytest.raises(ApiError) as refused:
        check(job)
    assert refused.value.code == 422
    assert refused.value.body["details"]["causes"][0]["field"] == "spec.template.spec"
