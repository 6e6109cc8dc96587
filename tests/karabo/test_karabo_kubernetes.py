"""The Karabo flow on the Kubernetes backend, against the Kubernetes API double.

The double's process kubelet runs the Job's container command as a local process
under its memory limit; ``tests/karabo/karabo_image`` provides the module the
Karabo image would (it runs the stand-in simulation).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prefect_kubernetes.credentials import KubernetesClusterConfig, KubernetesCredentials
from sluice.flows.karabo import karabo_simulation

from sluice.karabo.estimate import estimate
from sluice.karabo.settings import KaraboSettings
from sluice.ledger import open_ledger
from sluice.quantity import format_memory
from tests.k8s_double import K8sDouble, start_double
from tests.karabo.conftest import TINY

KARABO_IMAGE = Path(__file__).parent / "karabo_image"
# The real job's site-specific placement (compute nodes labelled and tainted hpc=true).
HPC_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "hpc", "operator": "In", "values": ["true"]}]}
            ]
        }
    }
}
HPC_TOLERATIONS = [
    {"key": "hpc", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
    {"key": "hpc", "operator": "Equal", "value": "true", "effect": "NoExecute"},
]
NAMESPACE = "datalake-ingestion"


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[K8sDouble]:
    image_bin = tmp_path / "image-bin"  # the image's `python`, whatever is on this machine's PATH
    image_bin.mkdir()
    (image_bin / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{image_bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(KARABO_IMAGE))
    double = start_double(work_dir=tmp_path / "k8s-double", namespace=NAMESPACE)
    monkeypatch.setenv("KUBECONFIG", str(double.kubeconfig))
    try:
        yield double
    finally:
        double.close()


@pytest.mark.usefixtures("prefect_api")
def test_the_simulation_runs_as_a_karabo_job_with_env_volume_and_limits(
    cluster, areas, tmp_path, sluice_home, monkeypatch
):
    scratch = tmp_path / "scratch"  # mounted at the same path in the flow pod and the Job
    # The cluster is reached through a saved prefect-kubernetes credentials block only.
    KubernetesCredentials(
        cluster_config=KubernetesClusterConfig(
            config=yaml.safe_load(cluster.kubeconfig.read_text()), context_name="double"
        )
    ).save("karabo-cluster")
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "no-kubeconfig-home"))
    ledger_url = f"sqlite:///{tmp_path / 'cluster-ledger.db'}"
    result = karabo_simulation(
        **TINY,
        obs_id="k8s",
        file_prefix="k8s_",
        products=["cleaned"],
        staging=str(areas["staging"]),
        processed=str(areas["processed"]),
        failed=str(areas["failed"]),
        scratch_dir=str(scratch),
        report_dir=str(tmp_path / "reports"),
        backend="kubernetes",
        namespace=NAMESPACE,
        # a block parameter as a deployment passes it: a reference Prefect resolves
        kubernetes_credentials={
            "$ref": {"block_document_slug": "kubernetes-credentials/karabo-cluster"}
        },
        ledger_url=ledger_url,
        min_memory="256Mi",
        memory_limit="512Mi",
        cpu=0.5,
        cpu_limit=1.0,
        node_selector={"hpc": "true"},
        affinity=HPC_AFFINITY,
        tolerations=HPC_TOLERATIONS,
        verify_timeout_seconds=60.0,
    )

    assert result == {"testing/k8s_cleaned.fits": "processed"}
    (job,) = cluster.jobs()
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/i4ds/karabo-pipeline:latest"
    assert container["command"] == [
        "python",
        "-m",
        "karabo.workflows.SRCNet_SKA-MID_AAstar",
        "--cleaned",
    ]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["OUT_DIR"] == str(scratch / "k8s")
    assert (env["SKY_MODEL"], env["OBS_ID"], env["FILE_PREFIX"]) == ("MIGHTEE_L1", "k8s", "k8s_")
    expected = estimate(KaraboSettings.parse(**TINY, obs_id="k8s", products=("cleaned",)))
    request = format_memory(max(256 * 2**20, expected.memory_bytes))
    # Requests and limits differ, as in the real job (64Gi/128Gi, cpu 16/32).
    assert container["resources"]["requests"] == {
        "ephemeral-storage": "1Gi",
        "memory": request,
        "cpu": "0.5",
    }
    assert container["resources"]["limits"] == {
        "ephemeral-storage": "4Gi",
        "memory": "512Mi",
        "cpu": "1",
    }
    # Placement is passed through untouched.
    assert pod["nodeSelector"] == {"hpc": "true"}
    assert pod["affinity"] == HPC_AFFINITY
    assert pod["tolerations"] == HPC_TOLERATIONS
    assert container["resources"]["limits"]["ephemeral-storage"] == "4Gi"
    assert {"name": "scratch", "mountPath": "/scratch"} in container["volumeMounts"]
    assert {"name": "scratch", "persistentVolumeClaim": {"claimName": "sluice-karabo-scratch"}} in (
        pod["volumes"]
    )
    # The workflow's temporaries go to a per-pod claim sized by the estimate (2 x products).
    assert env["TMPDIR"] == "/tmp"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    (tmp,) = [v for v in pod["volumes"] if v["name"] == "tmp"]
    claim = tmp["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == (f"{-(-expected.scratch_bytes // 2**20)}Mi")
    assert not (scratch / "k8s").exists()  # temporary data removed after the verified ingest
    ledger = open_ledger(ledger_url)
    try:
        (attempt,) = ledger.attempts("karabo-k8s")
    finally:
        ledger.close()
    assert (attempt.item, attempt.job_name, attempt.outcome) == (
        "simulation",
        "karabo-k8s",
        "succeeded",
    )
    assert attempt.memory_bytes == 512 * 2**20  # charged at the limit the pod could use
