"""`sluice logs --backend kubernetes`: a recorded attempt's pod log, through the official
client, from the API double."""

from __future__ import annotations

from typer.testing import CliRunner

from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend
from sluice.cli import app
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobSpec, Outcome
from sluice.ledger import open_ledger


def test_logs_reads_the_pod_log_of_a_recorded_attempt(k8s_api, tmp_path, monkeypatch, sluice_home):
    monkeypatch.setenv("KUBECONFIG", str(k8s_api.kubeconfig))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    run = f"sweep/{k8s_api.namespace}/k"  # a sweep's run names its namespace
    job = JobSpec(name="k-7", command=["python3", "-c", "print('index 7 on a pod')"])
    backend = KubernetesBackend(
        k8s_api.namespace, access=ClusterAccess(kubeconfig=str(k8s_api.kubeconfig))
    )
    ledger = open_ledger(url)
    try:
        results = run_jobs(backend, ledger, run, "w", [Planned(item="7", job=job)], timeout=120)
    finally:
        backend.close()
        ledger.close()
    assert results["7"].outcome is Outcome.SUCCEEDED
    runner = CliRunner()
    shown = runner.invoke(app, ["logs", run, "7", "--backend", "kubernetes", "--ledger-url", url])
    assert (shown.exit_code, shown.stdout) == (0, "index 7 on a pod\n"), shown.output
    local = runner.invoke(app, ["logs", run, "7", "--ledger-url", url])
    assert local.exit_code == 2
    assert local.stderr.strip().splitlines() == [
        "error: job 'k-7': no log file on this machine; if it ran on a cluster, give --backend"
    ]


def test_a_failed_jobs_log_tail_outlives_its_pod(k8s_api, tmp_path, monkeypatch, sluice_home):
    """One log read per failed job, none per succeeded one, kept bounded (its last 64 KiB);
    `sluice logs` prints that tail once the Job and its pod are deleted."""
    monkeypatch.setenv("KUBECONFIG", str(k8s_api.kubeconfig))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    run = f"sweep/{k8s_api.namespace}/t"
    said = "import sys\nfor i in range(3000): print(i, 'x' * 100)\nsys.exit(int(sys.argv[1]))"
    planned = [
        Planned(
            item=str(code),
            job=JobSpec(name=f"t-{code}", command=["python3", "-c", said, str(code)]),
        )
        for code in (0, 3)
    ]
    backend = KubernetesBackend(
        k8s_api.namespace, access=ClusterAccess(kubeconfig=str(k8s_api.kubeconfig))
    )
    ledger = open_ledger(url)
    try:
        results = run_jobs(backend, ledger, run, "w", planned, timeout=120)
        assert ledger.kept_log(ledger.latest(run)["0"].id) is None
        backend.delete(["t-0", "t-3"])
    finally:
        backend.close()
        ledger.close()
    assert (results["0"].outcome, results["3"].outcome) == (Outcome.SUCCEEDED, Outcome.FAILED)
    assert k8s_api.requests.count("GET", "pods/{name}/log") == 1
    k8s_api.wait_for(lambda: not k8s_api.pods())
    tail = "".join(f"{i} {'x' * 100}\n" for i in range(3000))[-(64 << 10) :]
    for where in (["--backend", "kubernetes"], []):
        shown = CliRunner().invoke(app, ["logs", run, "3", *where, "--ledger-url", url])
        assert (shown.exit_code, shown.stdout) == (0, tail), shown.stderr
        assert (
            shown.stderr == "job 't-3': its runtime's log is gone; the tail kept in the ledger:\n"
        )


def test_without_get_pods_log_the_wait_goes_on_keeping_no_tail(k8s_api, tmp_path, caplog):
    k8s_api.deny("get", "pods/log")
    backend = KubernetesBackend(
        k8s_api.namespace, access=ClusterAccess(kubeconfig=str(k8s_api.kubeconfig))
    )
    failing = [JobSpec(name=f"d-{i}", command=["python3", "-c", "exit(3)"]) for i in range(2)]
    try:
        backend.submit(failing)
        results = list(backend.wait([j.name for j in failing], timeout=120))
    finally:
        backend.close()
    assert [(r.outcome, r.log_tail) for r in results] == [(Outcome.FAILED, None)] * 2
    assert k8s_api.requests.count("GET", "pods/{name}/log") == 1  # asked once, then not
    assert "log tails are not kept" in caplog.text
