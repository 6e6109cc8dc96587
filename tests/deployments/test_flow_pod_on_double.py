"""A cluster sweep end to end, as in a cluster (issue 12.5), with its flow pod killed once.

A real prefect-kubernetes worker (``--run-once``) creates the flow-run Job of a
``tiered-index-sweep/cluster`` run on the Kubernetes double; the double's kubelet runs the
flow pod as a local process of the image's venv, with the pod's env and the ``sluice``
ServiceAccount's token (``infra/kubernetes`` applied); the flow creates the sweep's Jobs on
the same double, its ledger the ``sluice-ledger`` block on PostgreSQL.

Mid-run the flow pod is deleted (``kubectl delete pod``): the double's kubelet sends it
SIGTERM, as a node does. The base job template's ``backoffLimit`` 0 makes the worker set
``PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR=reschedule``: ``prefect flow-run execute``
moves the run to ``AwaitingRetry`` and exits; the Job fails without a replacement pod. The
worker's next poll creates a new flow-run Job for the same run, which resumes from the
ledger: every index runs and is recorded once, and the run ends Completed.

The worker's kopf observer is off: it only acts on a failed Job whose run is not settled
(a rescheduled run is Scheduled, so it is left alone; a Crashed it may write first is
overridden by the reschedule), and each ``--run-once`` worker exits before the pod dies.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
import yaml
from kubernetes import config, utils
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.deployments import run_deployment
from sluice.blocks import LedgerSettings

from sluice.ledger import open_ledger
from tests.core.sweep_workload import write_template
from tests.core.test_ledger import postgres_server  # noqa: F401  (the session fixture)
from tests.deployments.conftest import IMAGE_NAME, IMAGE_TAG, REPO, kubernetes_worker
from tests.k8s_double import K8sDouble, start_double

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # two flow pods start
FLOW_RUN = "prefect.io/flow-run-id"
FLOW_POD_TIMEOUT = 600  # a flow pod starts Prefect and imports Sluice: slow on a busy machine


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[K8sDouble]:
    """The double with ``infra/kubernetes`` applied and the image mapped to this venv."""
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "infra" / "kubernetes")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    double = start_double(work_dir=tmp_path / "k8s")
    try:
        admin = config.new_client_from_config(str(double.kubeconfig))
        utils.create_from_yaml(admin, yaml_objects=[o for o in yaml.safe_load_all(rendered) if o])
        admin.close()
        double.add_image(f"{IMAGE_NAME}:{IMAGE_TAG}", path=[Path(sys.executable).parent])
        yield double
    finally:
        double.close()


@pytest.fixture
def ledger_block(prefect_api: str, postgres_server: str) -> str:  # noqa: F811
    """The ``sluice-ledger`` block the cluster deployments name, on a fresh database."""
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db:
        db.execute("DROP DATABASE IF EXISTS cluster_sweep")
        db.execute("CREATE DATABASE cluster_sweep")
    url = f"{postgres_server}/cluster_sweep"
    LedgerSettings(url=url).save("sluice-ledger", overwrite=True)
    return url


def _flow_run_jobs(cluster: K8sDouble, run_id: str) -> list[dict]:
    jobs = [j for j in cluster.jobs() if j["metadata"]["labels"].get(FLOW_RUN) == run_id]
    return sorted(jobs, key=lambda j: int(j["metadata"]["resourceVersion"]))


def _condition(job: dict) -> str | None:
    for condition in job.get("status", {}).get("conditions") or ():
        if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
            return f"{condition['type']}:{condition['reason']}"
    return None


async def _states(run_id: str) -> tuple[str, list[str]]:
    async with get_client() as client:
        run = await client.read_flow_run(UUID(run_id))
        history = await client.read_flow_run_states(UUID(run_id))
    return run.state.name, [s.name for s in history]


async def _report(run_id: str) -> str:
    """The sweep's summary artifact of this flow run: what lasts on the Prefect server."""
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["sweep-report-k"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run_id)])),
        )
    (report,) = artifacts
    return str(report.data)


def test_a_killed_flow_pod_is_rescheduled_and_the_sweep_resumes_from_the_ledger(
    kubernetes_queue: str, cluster: K8sDouble, ledger_block: str, tmp_path: Path
) -> None:
    marker, release, done_log = tmp_path / "marker", tmp_path / "release", tmp_path / "done"
    done_log.touch()
    template = write_template(
        tmp_path / "job.yaml",
        BLOCK_INDEX="2",
        MARKER=str(marker),
        RELEASE=str(release),
        DONE_LOG=str(done_log),
    )
    run = run_deployment(
        "tiered-index-sweep/cluster",
        parameters={
            "template_path": str(template),
            "indexes": [0, 1, 2, 3],
            "tier": 0,
            "schedule_start_gi": 0.0625,
            "job_name_prefix": "k",
            "report_dir": str(tmp_path / "reports"),
            "quiet": True,
        },
        # SLUICE_HOME: the pod's scratch (its emptyDir volume in a cluster)
        job_variables={"env": {"SLUICE_HOME": str(tmp_path / "pod-home")}},
        work_queue_name=kubernetes_queue,
        timeout=0,
    )
    run_id = str(run.id)

    kubernetes_worker(cluster.kubeconfig, kubernetes_queue)
    (first,) = _flow_run_jobs(cluster, run_id)
    # mid-run: the sweep's Jobs exist on the same double, index 2 is held running
    cluster.wait_for(
        lambda: (
            {f"k-{i}" for i in range(4)} <= {j["metadata"]["name"] for j in cluster.jobs()}
            and any(p["status"].get("phase") == "Running" for p in cluster.pods_of("k-2"))
        ),
        timeout=FLOW_POD_TIMEOUT,
    )
    (flow_pod,) = cluster.pods_of(first["metadata"]["name"])
    assert flow_pod["status"]["phase"] == "Running"
    kubectl = subprocess.run(
        ["kubectl", "-n", cluster.namespace, "delete", "pod", "-l", f"{FLOW_RUN}={run_id}"],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # returns once the pod is gone: SIGTERM, then the reschedule, then exit
    assert kubectl.returncode == 0, kubectl.stderr
    assert f'pod "{flow_pod["metadata"]["name"]}" deleted' in kubectl.stdout
    state, _ = asyncio.run(_states(run_id))
    assert state == "AwaitingRetry"
    with psycopg.connect(ledger_block) as db:  # the stopped flow gave its ledger lease back
        assert db.execute("SELECT count(*) FROM leases").fetchone() == (0,)
    failed = cluster.wait_for(lambda: _condition(cluster.job(first["metadata"]["name"])))
    assert failed == "Failed:BackoffLimitExceeded"  # backoffLimit 0: no second pod
    assert len(cluster.pods_of(first["metadata"]["name"])) == 0
    release.touch()

    kubernetes_worker(cluster.kubeconfig, kubernetes_queue)  # takes the rescheduled run
    _, second = _flow_run_jobs(cluster, run_id)
    assert second["metadata"]["name"] != first["metadata"]["name"]
    ended = cluster.wait_for(
        lambda: _condition(cluster.job(second["metadata"]["name"])), timeout=FLOW_POD_TIMEOUT
    )
    (pod,) = cluster.pods_of(second["metadata"]["name"])
    assert ended == "Complete:CompletionsReached", cluster.kubelet.log_of(pod)

    state, history = asyncio.run(_states(run_id))
    assert state == "Completed"
    assert history.count("AwaitingRetry") == 1 and history.count("Running") == 2
    assert sorted(done_log.read_text().split()) == ["0", "1", "2", "3"]  # each ran once
    sweep_jobs = sorted(
        j["metadata"]["name"] for j in cluster.jobs() if FLOW_RUN not in j["metadata"]["labels"]
    )
    assert sweep_jobs == ["k-0", "k-1", "k-2", "k-3"]  # none created twice
    ledger = open_ledger(ledger_block)
    try:
        attempts = ledger.attempts("sweep/biodiversity/k")
    finally:
        ledger.close()
    assert sorted(a.item for a in attempts) == ["0", "1", "2", "3"]  # each recorded once
    assert {a.outcome.value for a in attempts} == {"succeeded"}
    assert ("create", "jobs") in cluster.rbac.used  # as the pod's ServiceAccount
    report = asyncio.run(_report(run_id))  # where the Jobs' logs are (issue 12.3)
    assert "`sluice logs sweep/biodiversity/k INDEX`" in report and "3600 s" in report
