"""The tiered sweep end to end on Kubernetes (the API double, whose kubelet runs real
processes under the pods' memory limits), in both modes."""

from __future__ import annotations

import json

import pytest

from flows.sweep import tiered_index_sweep
from tests.core.sweep_workload import write_template


@pytest.fixture
def cluster(k8s_api, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(k8s_api.kubeconfig))
    return k8s_api


@pytest.mark.parametrize("mode", ["per-index", "indexed"])
def test_sweep_escalates_real_oom_kills_on_kubernetes(
    cluster, tmp_path, prefect_api, sluice_home, mode
):
    done_log = tmp_path / "done.log"
    done_log.touch()
    template = write_template(tmp_path / "job.yaml", NEEDS="1:96,2:200", DONE_LOG=str(done_log))
    report_dir = tmp_path / "reports"
    summary = tiered_index_sweep(
        template_path=str(template),
        namespace="biodiversity",
        job_name_prefix="k",
        indexes=[0, 1, 2, 3],
        chunk_size=2,
        tier=0,
        schedule_start_gi=0.0625,
        max_tier=3,
        backend="kubernetes",
        mode=mode,
        quiet=True,
        wait_timeout="10m",
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        report_dir=str(report_dir),
    )
    assert summary.succeeded == 4
    items = {r["index"]: r for r in map(json.loads, (report_dir / "items.jsonl").open())}
    assert {i: r["tier"] for i, r in items.items()} == {0: 0, 1: 1, 2: 2, 3: 0}
    assert sorted(done_log.read_text().split()) == ["0", "1", "2", "3"]
    jobs = cluster.jobs("biodiversity")
    if mode == "per-index":
        names = sorted(j["metadata"]["name"] for j in jobs)
        assert names == ["k-0", "k-1", "k-1-a1", "k-2", "k-2-a1", "k-2-a2", "k-3"]
        job = next(j for j in jobs if j["metadata"]["name"] == "k-1-a1")
        assert job["metadata"]["labels"]["wetlands/index"] == "1"
        limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["memory"] in ("128Mi", "0.125Gi")
    else:
        # one Indexed Job per chunk and tier: both chunks at tier 0 and tier 1 (each had
        # an OOM), the second chunk (index 2) once more at tier 2
        assert all(j["spec"].get("completionMode") == "Indexed" for j in jobs)
        assert len(jobs) == 5


def test_server_dry_run_validates_every_manifest_and_stores_nothing(
    cluster, tmp_path, prefect_api, sluice_home
):
    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(tmp_path / "done.log"))
    tiered_index_sweep(
        template_path=str(template),
        namespace="biodiversity",
        indexes=[0, 1, 2],
        tier=0,
        backend="kubernetes",
        dry_run="server",
        ledger_url=f"sqlite:///{tmp_path / 'l.db'}",
    )
    assert cluster.requests.count(method="POST", kind="jobs") == 3
    assert cluster.jobs("biodiversity") == []
