"""KubernetesBackend against the Kubernetes API double, through the unmodified official client.

Pods run as real local processes under their memory limit (kubelet ``process`` mode),
so an OOM here is a real kernel kill; ``hold`` mode lets a test end or evict pods itself.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client, config

from sluice.backends.base import Backend
from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend, RbacDenied
from sluice.errors import BackendUnavailable, SluiceInputError
from sluice.jobs import JobResult, JobSpec, Outcome
from tests.k8s_double import K8sDouble

MiB = 2**20
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
PY = "python3"
ALLOCATE_200MB = "x = bytearray(200 * 2**20); x[::4096] = b'x' * len(x[::4096]); print(len(x))"


def spec(name: str, code: str = "print('ok')", *, memory: int = 64 * MiB, **kw) -> JobSpec:
    return JobSpec(name=name, command=[PY, "-c", code], memory_bytes=memory, **kw)


def index_spec(i: int, code: str, *, memory: int = 64 * MiB) -> JobSpec:
    return JobSpec(
        name=f"sweep-index-{i}",
        command=[PY, "-c", code],
        env={"INDEX": str(i), "SWEEP": "wetlands"},
        memory_bytes=memory,
        labels={"wetlands/index": str(i), "wetlands/batch": "tier0-chunk-00000"},
    )


@pytest.fixture
def make_backend(k8s_api: K8sDouble) -> Iterator[Callable[..., KubernetesBackend]]:
    made: list[KubernetesBackend] = []

    def make(**options) -> KubernetesBackend:
        backend = KubernetesBackend(
            k8s_api.namespace, access=ClusterAccess(kubeconfig=str(k8s_api.kubeconfig)), **options
        )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def run(backend: KubernetesBackend, jobs: list[JobSpec], **kw) -> dict[str, JobResult]:
    backend.submit(jobs, replace=kw.pop("replace", False))
    results = list(backend.wait([j.name for j in jobs], **kw))
    assert sorted(r.name for r in results) == sorted(j.name for j in jobs), "one result per job"
    return {r.name: r for r in results}


def pod_of(k8s_api: K8sDouble, job_name: str) -> dict:
    """The one pod of a per-index Job, once the Job controller has created it."""
    (pod,) = k8s_api.wait_for(lambda: k8s_api.pods_of(job_name))
    return pod


def official_client(k8s_api: K8sDouble) -> client.BatchV1Api:
    return client.BatchV1Api(config.new_client_from_config(str(k8s_api.kubeconfig)))


def test_backend_protocol(make_backend) -> None:
    assert isinstance(make_backend(), Backend)


def test_secrets_from_a_flow_are_refused_in_one_line(k8s_api, make_backend) -> None:
    backend = make_backend()
    backend.preflight(["any-kind"])
    with pytest.raises(SluiceInputError, match="from a Secret the Job template names") as refused:
        backend.put_secrets({"AWS_SECRET_ACCESS_KEY": "k8s-s3cr3t-value"})
    assert "k8s-s3cr3t-value" not in str(refused.value)  # the key's name only
    assert k8s_api.jobs() == []  # nothing was made


def test_per_index_jobs_end_to_end_with_real_oom_kills(k8s_api, make_backend) -> None:
    backend = make_backend()
    jobs = [
        spec("ok-1", "import os; print('index', os.environ['INDEX'])", env={"INDEX": "1"}),
        spec("oom-1", ALLOCATE_200MB),
        spec("exit-3", "raise SystemExit(3)"),
    ]
    k8s_api.requests.clear()
    results = run(backend, jobs, timeout=120)
    assert results["ok-1"].outcome is Outcome.SUCCEEDED
    assert results["oom-1"].outcome is Outcome.OOM and results["oom-1"].reason == "oom"
    assert results["exit-3"].outcome is Outcome.FAILED and results["exit-3"].reason == "exit:3"
    assert backend.logs("ok-1") == "index 1\n"
    stored = {j["metadata"]["name"]: j for j in k8s_api.jobs()}
    assert set(stored) == {"ok-1", "oom-1", "exit-3"}
    job = stored["oom-1"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == "64Mi"
    assert container["resources"]["requests"]["memory"] == "64Mi"
    assert job["spec"]["parallelism"] == 1 and job["spec"]["completions"] == 1
    assert job["spec"]["backoffLimit"] == 0
    # Waiting is one watch; no Job is ever read by name (no per-Job polling).
    assert k8s_api.requests.count("GET", "jobs", watch=True) >= 1
    assert k8s_api.requests.count("GET", "jobs/{name}") == 0
    assert k8s_api.requests.count("POST", "jobs") == 3


def test_indexed_mode_one_job_per_group_with_per_index_env(k8s_api, make_backend) -> None:
    backend = make_backend(mode="indexed", parallelism=2)
    code = (
        "import os; i = int(os.environ['INDEX']); print('index', i, os.environ['SWEEP']);"
        "x = bytearray(200 * 2**20) if i % 2 else b''; raise SystemExit(3 if i == 4 else 0)"
    )
    jobs = [index_spec(i, code) for i in (0, 1, 4, 6, 7)]
    results = run(backend, jobs, timeout=120)
    outcomes = {name: r.outcome for name, r in results.items()}
    assert outcomes == {
        "sweep-index-0": Outcome.SUCCEEDED,
        "sweep-index-1": Outcome.OOM,
        "sweep-index-4": Outcome.FAILED,
        "sweep-index-6": Outcome.SUCCEEDED,
        "sweep-index-7": Outcome.OOM,
    }
    assert results["sweep-index-4"].exit_code == 3
    (job,) = k8s_api.jobs()
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 5 and job["spec"]["parallelism"] == 2
    assert job["spec"]["backoffLimitPerIndex"] == 0
    assert job["metadata"]["labels"]["wetlands/batch"] == "tier0-chunk-00000"
    assert "wetlands/index" not in job["metadata"]["labels"]
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["INDEX_MAPPING"] == "0\n1\n4\n6\n7" and env["SWEEP"] == "wetlands"
    assert backend.logs("sweep-index-6") == "index 6 wetlands\n"


def test_indexed_mode_groups_by_memory(k8s_api, make_backend) -> None:
    backend = make_backend(mode="indexed")
    jobs = [index_spec(0, "pass"), index_spec(1, "pass"), index_spec(2, "pass", memory=128 * MiB)]
    results = run(backend, jobs, timeout=120)
    assert all(r.outcome is Outcome.SUCCEEDED for r in results.values())
    assert sorted(j["spec"]["completions"] for j in k8s_api.jobs()) == [1, 2]


def fail_index_seven(pod: dict) -> tuple[int, str] | None:
    """Instant kubelet: the pod of sweep index 7 (either mode) exits 3, the rest succeed."""
    meta = pod["metadata"]
    per_index = meta["labels"].get("job-name") == "sweep-index-7"
    indexed = (meta.get("annotations") or {}).get(INDEX_KEY) == "7"
    return (3, "Error") if per_index or indexed else None


@pytest.mark.parametrize("mode", ["per-index", "indexed"])
def test_faults_on_ten_percent_of_requests_lose_nothing_duplicate_nothing(
    k8s_api, make_backend, mode
) -> None:
    k8s_api.set_kubelet("instant", fail_index_seven)
    k8s_api.set_faults(0.1, ("429", "500", "reset", "reset-after"), seed=7)
    backend = make_backend(mode=mode)
    jobs = [index_spec(i, "pass") for i in range(40)]
    results = run(backend, jobs, timeout=120)
    failed = {n for n, r in results.items() if r.outcome is not Outcome.SUCCEEDED}
    assert failed == {"sweep-index-7"} and results["sweep-index-7"].exit_code == 3
    assert sum(k8s_api.faults.injected.values()) > 0
    k8s_api.set_faults(0)
    stored = k8s_api.jobs()
    names = [j["metadata"]["name"] for j in stored]
    assert len(names) == len(set(names))
    assert len(stored) == (40 if mode == "per-index" else 1)
    pods_per_job = {
        j["metadata"]["name"]: len(k8s_api.pods_of(j["metadata"]["name"])) for j in stored
    }
    expected_pods = 1 if mode == "per-index" else 40
    assert set(pods_per_job.values()) == {expected_pods}


def test_existing_job_is_adopted_and_awaited(k8s_api, make_backend) -> None:
    k8s_api.set_kubelet("hold")
    first = make_backend()
    first.submit([spec("adopt-me")])
    (original,) = k8s_api.jobs()
    second = make_backend()  # another process: knows nothing of the first submit
    second.submit([spec("adopt-me")])
    (still,) = k8s_api.jobs()
    assert still["metadata"]["uid"] == original["metadata"]["uid"]
    pod = pod_of(k8s_api, "adopt-me")
    k8s_api.finish_pod(pod["metadata"]["name"], 0)
    (result,) = second.wait(["adopt-me"], timeout=60)
    assert result.outcome is Outcome.SUCCEEDED


def test_job_created_by_someone_else_is_adopted(k8s_api, make_backend) -> None:
    k8s_api.set_kubelet("hold")
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "foreign"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "x", "command": [PY, "-c", "1"]}],
                }
            },
        },
    }
    official_client(k8s_api).create_namespaced_job(k8s_api.namespace, manifest)
    backend = make_backend()
    backend.submit([spec("foreign")])
    pod = pod_of(k8s_api, "foreign")
    k8s_api.finish_pod(pod["metadata"]["name"], 5)
    (result,) = backend.wait(["foreign"], timeout=60)
    assert result.outcome is Outcome.FAILED and result.exit_code == 5
    assert len(k8s_api.jobs()) == 1


def test_replace_deletes_waits_and_recreates(k8s_api, make_backend) -> None:
    backend = make_backend()
    assert run(backend, [spec("again", "raise SystemExit(2)")], timeout=60)["again"].exit_code == 2
    (old,) = k8s_api.jobs()
    results = run(backend, [spec("again", "print('second')")], replace=True, timeout=60)
    assert results["again"].outcome is Outcome.SUCCEEDED
    (new,) = k8s_api.jobs()
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert backend.logs("again") == "second\n"


def test_logs_are_the_jobs_container_when_the_template_adds_a_sidecar(
    k8s_api, make_backend
) -> None:
    template = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "main", "image": "python:3.11-slim"},
                        {"name": "sidecar", "image": "busybox", "command": ["true"]},
                    ]
                }
            }
        }
    }
    backend = make_backend()
    job = spec("with-sidecar", "print('from main')", template=template)
    assert run(backend, [job], timeout=60)["with-sidecar"].outcome is Outcome.SUCCEEDED
    assert backend.logs("with-sidecar") == "from main\n"


def test_replace_in_indexed_mode(k8s_api, make_backend) -> None:
    backend = make_backend(mode="indexed")
    jobs = [index_spec(i, "raise SystemExit(1)") for i in range(2)]
    assert {r.outcome for r in run(backend, jobs, timeout=60).values()} == {Outcome.FAILED}
    jobs = [index_spec(i, "pass") for i in range(2)]
    assert {r.outcome for r in run(backend, jobs, replace=True, timeout=60).values()} == {
        Outcome.SUCCEEDED
    }
    assert len(k8s_api.jobs()) == 1


@pytest.mark.parametrize("mode", ["per-index", "indexed"])
def test_server_dry_run_stores_nothing(k8s_api, make_backend, mode) -> None:
    backend = make_backend(mode=mode, dry_run="server")
    jobs = [index_spec(i, "pass") for i in range(3)]
    results = run(backend, jobs, timeout=10)
    assert {r.outcome for r in results.values()} == {Outcome.CANCELLED}
    assert k8s_api.jobs() == [] and k8s_api.pods() == []
    assert k8s_api.requests.count("POST", "jobs") == (3 if mode == "per-index" else 1)


def test_eviction_is_lost_not_failed(k8s_api, make_backend) -> None:
    k8s_api.set_kubelet("hold")
    backend = make_backend()
    backend.submit([spec("evicted"), spec("preempted")])
    for name, reason in (
        ("evicted", "TerminationByKubelet"),
        ("preempted", "PreemptionByScheduler"),
    ):
        pod = pod_of(k8s_api, name)
        k8s_api.evict_pod(pod["metadata"]["name"], condition_reason=reason)
    results = {r.name: r for r in backend.wait(["evicted", "preempted"], timeout=60)}
    assert {r.outcome for r in results.values()} == {Outcome.LOST}
    assert "PreemptionByScheduler" in results["preempted"].message


def test_evicted_index_is_lost_in_indexed_mode(k8s_api, make_backend) -> None:
    k8s_api.set_kubelet("hold")
    backend = make_backend(mode="indexed")
    jobs = [index_spec(i, "pass") for i in range(2)]
    backend.submit(jobs)
    pods = k8s_api.wait_for(lambda: len(k8s_api.pods()) == 2 and k8s_api.pods())
    by_index = {p["metadata"]["annotations"][INDEX_KEY]: p for p in pods}
    k8s_api.evict_pod(by_index["0"]["metadata"]["name"])
    k8s_api.finish_pod(by_index["1"]["metadata"]["name"], 0)
    results = {r.name: r.outcome for r in backend.wait([j.name for j in jobs], timeout=60)}
    assert results == {"sweep-index-0": Outcome.LOST, "sweep-index-1": Outcome.SUCCEEDED}


def test_oomkilled_with_exit_code_zero_is_success(k8s_api, make_backend) -> None:
    """kubernetes#131530: a child was OOM-killed, the main process exited 0 -> succeeded."""
    k8s_api.set_kubelet("hold")
    backend = make_backend()
    backend.submit([spec("child-oom"), spec("main-oom")])
    child = pod_of(k8s_api, "child-oom")
    k8s_api.finish_pod(child["metadata"]["name"], 0, "OOMKilled")
    main = pod_of(k8s_api, "main-oom")
    k8s_api.finish_pod(main["metadata"]["name"], 137, "OOMKilled")
    results = {r.name: r.outcome for r in backend.wait(["child-oom", "main-oom"], timeout=60)}
    assert results == {"child-oom": Outcome.SUCCEEDED, "main-oom": Outcome.OOM}


def test_job_deadline_is_a_timeout(k8s_api, make_backend) -> None:
    k8s_api.set_kubelet("hold")
    backend = make_backend()
    (result,) = run(backend, [spec("slow", timeout_seconds=1)], timeout=60).values()
    assert result.outcome is Outcome.TIMEOUT and "DeadlineExceeded" in result.message


def test_wait_timeout_times_out_and_deletes_running_jobs(k8s_api, make_backend) -> None:
    k8s_api.set_kubelet("hold")
    backend = make_backend()
    (result,) = run(backend, [spec("forever")], timeout=1).values()
    assert result.outcome is Outcome.TIMEOUT
    assert k8s_api.jobs() == []


def test_job_gone_before_it_ended_is_lost(k8s_api, make_backend) -> None:
    k8s_api.set_kubelet("hold")
    backend = make_backend()
    backend.submit([spec("doomed"), spec("kept")])
    results = backend.wait(["doomed", "kept"], timeout=60)
    official_client(k8s_api).delete_namespaced_job("doomed", k8s_api.namespace)
    first = next(results)
    assert (first.name, first.outcome) == ("doomed", Outcome.LOST)
    pod = pod_of(k8s_api, "kept")
    k8s_api.finish_pod(pod["metadata"]["name"], 0)
    assert [(r.name, r.outcome) for r in results] == [("kept", Outcome.SUCCEEDED)]


def test_watch_relists_after_410_gone(k8s_api, make_backend) -> None:
    k8s_api.set_kubelet("hold")
    backend = make_backend()
    backend.submit([spec("a"), spec("b")])
    results = backend.wait(["a", "b"], timeout=60)
    pod_a = pod_of(k8s_api, "a")
    k8s_api.finish_pod(pod_a["metadata"]["name"], 0)
    assert next(results).name == "a"
    lists_before = k8s_api.requests.count("GET", "jobs", watch=False)
    k8s_api.store.close_watches()  # the server ends the open watch...
    pod_b = pod_of(k8s_api, "b")
    k8s_api.finish_pod(pod_b["metadata"]["name"], 0)
    k8s_api.compact()  # ...and b's ending is compacted away: resuming must get 410 and relist
    assert [r.name for r in results] == ["b"]
    assert k8s_api.requests.count("GET", "jobs", watch=False) == lists_before + 1


def test_forbidden_names_the_missing_verb(k8s_api, make_backend) -> None:
    k8s_api.deny("create", "jobs")
    backend = make_backend()
    with pytest.raises(RbacDenied) as caught:
        backend.submit([spec("nope")])
    message = str(caught.value)
    assert "\n" not in message and "'create'" in message and "jobs" in message
    assert k8s_api.jobs() == []


def test_preflight_checks_read_permissions_before_submitting(k8s_api, make_backend) -> None:
    k8s_api.deny("list", "pods")
    backend = make_backend()
    with pytest.raises(RbacDenied, match="list pods"):
        backend.submit([spec("nope")])
    assert k8s_api.requests.count("POST", "jobs") == 0


def test_unreachable_cluster_is_one_clear_line(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        f"clusters: [{{name: gone, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u}}]\n"
    )
    backend = KubernetesBackend("ns", access=ClusterAccess(kubeconfig=str(kubeconfig)))
    with pytest.raises(BackendUnavailable) as caught:
        backend.preflight()
    message = str(caught.value)
    assert "\n" not in message and "unreachable" in message and str(port) in message


def test_missing_kubeconfig_is_one_clear_line(tmp_path) -> None:
    with pytest.raises(BackendUnavailable, match="Kubernetes configuration") as caught:
        KubernetesBackend("ns", access=ClusterAccess(kubeconfig=str(tmp_path / "absent")))
    assert "\n" not in str(caught.value)


def test_target_block_from_prefect_kubernetes_credentials(k8s_api) -> None:
    import yaml
    from prefect_kubernetes.credentials import KubernetesClusterConfig, KubernetesCredentials
    from sluice.blocks.kubernetes import KubernetesTarget

    document = yaml.safe_load(k8s_api.kubeconfig.read_text())
    credentials = KubernetesCredentials(
        cluster_config=KubernetesClusterConfig(config=document, context_name="double")
    )
    target = KubernetesTarget(namespace=k8s_api.namespace, mode="indexed", credentials=credentials)
    backend = target.backend()
    try:
        results = run(backend, [index_spec(i, "pass") for i in range(2)], timeout=60)
        assert {r.outcome for r in results.values()} == {Outcome.SUCCEEDED}
        assert len(k8s_api.jobs()) == 1
    finally:
        backend.close()


def test_target_block_from_kubeconfig_path(k8s_api) -> None:
    from sluice.blocks.kubernetes import KubernetesTarget

    target = KubernetesTarget(namespace=k8s_api.namespace, kubeconfig_path=str(k8s_api.kubeconfig))
    backend = target.backend(dry_run=True)
    try:
        backend.preflight()
        assert backend.dry_run and backend.namespace == k8s_api.namespace
    finally:
        backend.close()


def test_the_role_in_infra_is_enough(k8s_api, make_backend) -> None:
    """Deny every verb infra/kubernetes/rbac.yaml does not grant; every operation still works."""
    from pathlib import Path

    import yaml

    rbac = Path(__file__).resolve().parents[2] / "infra" / "kubernetes" / "rbac.yaml"
    (role,) = [d for d in yaml.safe_load_all(rbac.read_text()) if d["kind"] == "Role"]
    granted = {(v, r) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    verbs = ("get", "list", "watch", "create", "update", "patch", "delete")
    resources = ("jobs", "jobs/status", "pods", "pods/log")
    for pair in {(v, r) for v in verbs for r in resources} - granted:
        k8s_api.deny(*pair)
    backend = make_backend()
    assert run(backend, [spec("rbac-a", "print('a')")], timeout=60)["rbac-a"].reason is None
    backend.submit([spec("rbac-a")])  # adopt
    results = run(backend, [spec("rbac-a", "raise SystemExit(4)")], replace=True, timeout=60)
    assert results["rbac-a"].exit_code == 4
    assert backend.logs("rbac-a") == ""
    k8s_api.set_kubelet("hold")
    assert run(backend, [spec("rbac-b")], timeout=1)["rbac-b"].outcome is Outcome.TIMEOUT


def test_namespace_defaults_to_the_kubeconfig_context(k8s_api) -> None:
    backend = KubernetesBackend(access=ClusterAccess(kubeconfig=str(k8s_api.kubeconfig)))
    try:
        assert backend.namespace == k8s_api.namespace == "biodiversity"
    finally:
        backend.close()


def test_resumed_indexed_subset_adopts_the_running_indexed_job(k8s_api, make_backend) -> None:
    """A flow resumed after a crash resubmits only unfinished items: none may run twice."""
    k8s_api.set_kubelet("hold")
    jobs = [index_spec(i, "pass") for i in range(4)]
    make_backend(mode="indexed").submit(jobs)
    pods = k8s_api.wait_for(lambda: len(k8s_api.pods()) == 4 and k8s_api.pods())
    by_index = {p["metadata"]["annotations"][INDEX_KEY]: p["metadata"]["name"] for p in pods}
    resumed = make_backend(mode="indexed")
    resumed.submit(jobs[2:])
    assert len(k8s_api.jobs()) == 1
    for index in ("2", "3"):
        k8s_api.finish_pod(by_index[index], 0 if index == "2" else 9)
    results = {r.name: r.reason for r in resumed.wait([j.name for j in jobs[2:]], timeout=60)}
    assert results == {"sweep-index-2": None, "sweep-index-3": "exit:9"}
    assert len(k8s_api.pods()) == 4


def test_indexed_wait_timeout_keeps_failures_already_known(k8s_api, make_backend) -> None:
    k8s_api.set_kubelet("hold")
    backend = make_backend(mode="indexed")
    jobs = [index_spec(i, "pass") for i in range(3)]
    backend.submit(jobs)
    pods = k8s_api.wait_for(lambda: len(k8s_api.pods()) == 3 and k8s_api.pods())
    by_index = {p["metadata"]["annotations"][INDEX_KEY]: p["metadata"]["name"] for p in pods}
    k8s_api.finish_pod(by_index["0"], 0)
    k8s_api.finish_pod(by_index["1"], 137, "OOMKilled")
    k8s_api.wait_for(lambda: (k8s_api.jobs()[0].get("status") or {}).get("failedIndexes"))
    results = {r.name: r.outcome for r in backend.wait([j.name for j in jobs], timeout=2)}
    assert results == {
        "sweep-index-0": Outcome.SUCCEEDED,
        "sweep-index-1": Outcome.OOM,
        "sweep-index-2": Outcome.TIMEOUT,
    }
    assert k8s_api.jobs() == []


def test_delete_stops_jobs_and_ignores_unknown_names(k8s_api, make_backend) -> None:
    k8s_api.set_kubelet("hold")
    per_index = make_backend()
    per_index.submit([spec("del-a"), spec("del-b")])
    per_index.delete(["del-a", "never-submitted"])
    k8s_api.wait_for(lambda: [j["metadata"]["name"] for j in k8s_api.jobs()] == ["del-b"])
    indexed = make_backend(mode="indexed")
    jobs = [index_spec(i, "pass") for i in range(2)]
    indexed.submit(jobs)
    indexed.delete([jobs[0].name])  # the other item still runs in that Indexed Job: kept
    assert len(k8s_api.jobs()) == 2
    indexed.delete([j.name for j in jobs])
    k8s_api.wait_for(lambda: len(k8s_api.jobs()) == 1)


def test_operators_can_use_kubectl_on_sluice_jobs(k8s_api, make_backend, tmp_path) -> None:
    import subprocess

    backend = make_backend()
    run(backend, [index_spec(i, "import os; print('did', os.environ['INDEX'])") for i in (1, 2)])

    def kubectl(*args: str) -> str:
        return subprocess.run(
            ["kubectl", f"--kubeconfig={k8s_api.kubeconfig}", f"--cache-dir={tmp_path}", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    listed = kubectl("get", "jobs", "-l", "wetlands/batch=tier0-chunk-00000", "-o", "name")
    assert listed.split() == ["job.batch/sweep-index-1", "job.batch/sweep-index-2"]
    kubectl("wait", "--for=condition=complete", "job/sweep-index-2", "--timeout=30s")
    assert kubectl("logs", "job/sweep-index-2") == "did 2\n"


def test_replace_under_faults_never_adopts_the_old_job(k8s_api, make_backend) -> None:
    backend = make_backend()
    jobs = [spec(f"rep-{i}", "raise SystemExit(2)") for i in range(10)]
    run(backend, jobs, timeout=60)
    old = {j["metadata"]["uid"] for j in k8s_api.jobs()}
    k8s_api.set_faults(0.2, ("reset-after", "500", "429"), seed=3)
    results = run(backend, [spec(j.name, "pass") for j in jobs], replace=True, timeout=60)
    k8s_api.set_faults(0)
    assert {r.outcome for r in results.values()} == {Outcome.SUCCEEDED}
    new = {j["metadata"]["uid"] for j in k8s_api.jobs()}
    assert len(new) == 10 and not new & old
