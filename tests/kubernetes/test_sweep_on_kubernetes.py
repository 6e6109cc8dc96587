"""The tiered sweep end to end on Kubernetes (the API double, whose kubelet runs real
processes under the pods' memory limits), in both modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sluice.flows.sweep import tiered_index_sweep

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
    # one read of a pod's log per OOM kill (its tail, kept in the ledger), none per success
    assert cluster.requests.count("GET", "pods/{name}/log") == 3
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


def _printed(template, args: list[str]) -> list[dict]:
    from typer.testing import CliRunner

    from sluice.cli import app
    from tests.core.sweep_seed import documents

    result = CliRunner().invoke(
        app, ["sweep", "--template-path", str(template), "--dry-run", "print", *args]
    )
    assert result.exit_code == 0, result.output
    return documents(result.stdout)


def _contained(printed, stored, path="") -> None:
    """Every value ``printed`` sets is in ``stored`` as printed (the server only adds)."""
    if isinstance(printed, dict):
        for key, value in printed.items():
            if key != "wetlands/orchestrator-timestamp":
                assert key in stored, f"{path}.{key} missing"
                _contained(value, stored[key], f"{path}.{key}")
    elif isinstance(printed, list):
        assert len(printed) == len(stored), path
        for number, (a, b) in enumerate(zip(printed, stored, strict=True)):
            _contained(a, b, f"{path}[{number}]")
    else:
        assert printed == stored, f"{path}: printed {printed!r}, created {stored!r}"


@pytest.mark.parametrize("mode", ["per-index", "indexed"])
def test_print_shows_exactly_the_jobs_a_run_creates(
    cluster, tmp_path, prefect_api, sluice_home, mode
):
    """Issue 11.1: in indexed mode one Indexed Job per chunk (not per-index Jobs), and in
    both modes every printed field is what the run then creates, and no other Job."""
    cluster.set_kubelet("instant")
    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(tmp_path / "done.log"))
    args = ["--indexes", "0", "1", "2", "3", "4", "--chunk-size", "2", "--tier", "0"]
    printed = _printed(template, [*args, "--mode", mode, "--backend", "kubernetes"])
    if mode == "indexed":
        assert [m["spec"]["completions"] for m in printed] == [2, 2, 1]
        assert all(m["spec"]["completionMode"] == "Indexed" for m in printed)
    else:
        assert len(printed) == 5
    tiered_index_sweep(
        template_path=str(template),
        indexes=[0, 1, 2, 3, 4],
        chunk_size=2,
        tier=0,
        backend="kubernetes",
        mode=mode,
        quiet=True,
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        report_dir=str(tmp_path / "reports"),
    )
    created = {job["metadata"]["name"]: job for job in cluster.jobs("biodiversity")}
    assert sorted(created) == sorted(m["metadata"]["name"] for m in printed)
    for manifest in printed:
        _contained(manifest, created[manifest["metadata"]["name"]])


def test_indexed_server_dry_run_validates_one_indexed_job_per_chunk(
    cluster, tmp_path, prefect_api, sluice_home
):
    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(tmp_path / "done.log"))
    tiered_index_sweep(
        template_path=str(template),
        indexes=list(range(5)),
        chunk_size=2,
        tier=0,
        backend="kubernetes",
        mode="indexed",
        dry_run="server",
        ledger_url=f"sqlite:///{tmp_path / 'l.db'}",
    )
    assert cluster.requests.count(method="POST", kind="jobs") == 3
    assert cluster.jobs("biodiversity") == []


def test_printed_manifests_pipe_into_kubectl_apply(k8s_api, tmp_path, sluice_home):
    """stdout of --dry-run print is only the JSON documents: `| kubectl apply -f -` works
    as it did with the seed's manifests (the count line goes to stderr)."""
    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(tmp_path / "done.log"))
    printed = subprocess.run(
        [sys.executable, "-m", "sluice.cli", "sweep", "--template-path", str(template)]
        + ["--count", "3", "--chunk-size", "2", "--tier", "0", "--dry-run", "print"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "SLUICE_HOME": str(sluice_home)},
    )
    assert printed.stderr.strip().endswith("Generated 3 manifests for 3 indexes; nothing submitted")
    applied = subprocess.run(
        ["kubectl", f"--kubeconfig={k8s_api.kubeconfig}", f"--cache-dir={tmp_path / 'kc'}"]
        + ["apply", "-f", "-"],
        input=printed.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    names = sorted(job["metadata"]["name"] for job in k8s_api.jobs("biodiversity"))
    assert names == ["wetlands-index-0", "wetlands-index-1", "wetlands-index-2"]
