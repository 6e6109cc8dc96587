"""A real prefect-kubernetes worker takes a cluster deployment's run and creates its Job on
the Kubernetes double (a step of issue 12.5: the flow pod is held, not yet executed).

prefect-kubernetes 0.8 creates the flow-run Job and returns; its kopf observer (switched
off here) would follow the pod. The double validates the Job the worker renders from
``infra/kubernetes/base-job-template.json`` against the strict Kubernetes schemas.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.deployments import run_deployment

from tests.deployments.conftest import IMAGE_NAME, IMAGE_TAG, kubernetes_worker
from tests.k8s_double import K8sDouble, start_double

pytestmark = pytest.mark.slow


@pytest.fixture
def held_cluster(tmp_path: Path) -> Iterator[K8sDouble]:
    double = start_double(work_dir=tmp_path / "k8s", kubelet="hold")
    try:
        yield double
    finally:
        double.close()


def test_the_kubernetes_worker_creates_the_flow_run_job_on_the_double(
    kubernetes_queue: str, held_cluster: K8sDouble, tmp_path: Path
) -> None:
    run = run_deployment(
        "tiered-index-sweep/cluster",
        parameters={"template_path": str(tmp_path / "job.yaml"), "indexes": [0], "tier": 0},
        work_queue_name=kubernetes_queue,
        timeout=0,
    )
    run_id = str(run.id)
    kubernetes_worker(held_cluster.kubeconfig, kubernetes_queue)

    (job,) = held_cluster.jobs()
    assert job["metadata"]["labels"]["prefect.io/flow-run-id"] == run_id
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"{IMAGE_NAME}:{IMAGE_TAG}"
    assert pod["serviceAccountName"] == "sluice"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PREFECT__FLOW_RUN_ID"] == run_id
    assert "SLUICE_LEDGER_URL" not in env  # the ledger is the deployment's ledger_block
    (flow_pod,) = held_cluster.wait_for(lambda: held_cluster.pods_of(job["metadata"]["name"]))
    assert flow_pod["metadata"]["namespace"] == held_cluster.namespace
