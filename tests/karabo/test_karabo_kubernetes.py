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

from flows.karabo import karabo_simulation
from sluice.karabo.estimate import estimate
from sluice.karabo.settings import KaraboSettings
from sluice.quantity import format_memory
from tests.k8s_double import K8sDouble, start_double
from tests.karabo.conftest import TINY

KARABO_IMAGE = Path(__file__).parent / "karabo_image"
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
    cluster, areas, tmp_path, sluice_home
):
    scratch = tmp_path / "scratch"  # mounted at the same path in the flow pod and the Job
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
        cpu=1.0,
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
    memory = format_memory(max(256 * 2**20, expected.memory_bytes))
    for kind in ("requests", "limits"):
        assert container["resources"][kind]["memory"] == memory
        assert container["resources"][kind]["cpu"] == "1"
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
