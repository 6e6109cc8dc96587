"""The Kubernetes API double behaves like the real API for the official client and kubectl."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.k8s_double import K8sDouble

NS = "biodiversity"


def job_manifest(name: str, command: list[str] | None = None, **spec: object) -> dict:
    container = {"name": "work", "image": "python:3.11", "command": command or ["true"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "sluice", "tier": "1"}},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            **spec,
        },
    }


@pytest.fixture
def batch(k8s_api: K8sDouble) -> client.BatchV1Api:
    return client.BatchV1Api(config.new_client_from_config(str(k8s_api.kubeconfig)))


@pytest.fixture
def core(k8s_api: K8sDouble) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(k8s_api.kubeconfig)))


def status_of(error: ApiException) -> dict:
    return json.loads(error.body)


def test_create_defaults_like_the_api_server(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    created = batch.create_namespaced_job(NS, job_manifest("sweep-1"))
    uid = created.metadata.uid
    assert created.metadata.resource_version and created.metadata.creation_timestamp
    assert created.metadata.generation == 1
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    labels = created.spec.template.metadata.labels
    assert labels["controller-uid"] == labels["batch.kubernetes.io/controller-uid"] == uid
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "sweep-1"
    assert created.metadata.labels == {"app": "sluice", "tier": "1"}
    assert (created.spec.completions, created.spec.parallelism) == (1, 1)
    assert created.spec.completion_mode == "NonIndexed"
    fetched = batch.read_namespaced_job("sweep-1", NS)
    assert fetched.metadata.uid == uid
    assert batch.read_namespaced_job_status("sweep-1", NS).metadata.uid == uid
    pods = k8s_api.wait_for(lambda: k8s_api.pods_of("sweep-1"))
    assert pods[0]["metadata"]["labels"]["job-name"] == "sweep-1"
    assert pods[0]["metadata"]["ownerReferences"][0]["uid"] == uid


def test_backoff_limit_defaults_to_six(batch):
    manifest = job_manifest("plain")
    del manifest["spec"]["backoffLimit"]
    assert batch.create_namespaced_job(NS, manifest, dry_run="All").spec.backoff_limit == 6


def test_duplicate_create_is_409_already_exists(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    batch.create_namespaced_job(NS, job_manifest("dup"))
    with pytest.raises(ApiException) as caught:
        batch.create_namespaced_job(NS, job_manifest("dup"))
    assert caught.value.status == 409
    body = status_of(caught.value)
    assert body["kind"] == "Status" and body["reason"] == "AlreadyExists"
    assert body["details"] == {"name": "dup", "group": "batch", "kind": "jobs"}
    assert len(k8s_api.jobs()) == 1


def test_missing_job_is_404_not_found(batch):
    with pytest.raises(ApiException) as caught:
        batch.read_namespaced_job("nope", NS)
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == 'jobs.batch "nope" not found'
    with pytest.raises(ApiException) as caught:
        batch.delete_namespaced_job("nope", NS)
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m: m["metadata"].update(name="Bad_Name"), "metadata.name"),
        (lambda m: m["spec"]["template"]["spec"].update(containers=[]), "containers"),
        (lambda m: m["spec"]["template"]["spec"].pop("restartPolicy"), "restartPolicy"),
        (lambda m: m["spec"].update(selector={"matchLabels": {"a": "b"}}), "spec.selector"),
    ],
)
def test_invalid_jobs_are_422_with_field_causes(k8s_api, batch, change, field):
    manifest = job_manifest("fine")
    change(manifest)
    with pytest.raises(ApiException) as caught:
        batch.create_namespaced_job(NS, manifest)
    assert caught.value.status == 422
    body = status_of(caught.value)
    assert body["reason"] == "Invalid"
    assert any(field in cause["field"] for cause in body["details"]["causes"])
    assert k8s_api.jobs() == []


def test_dry_run_all_validates_and_stores_nothing(k8s_api, batch):
    returned = batch.create_namespaced_job(NS, job_manifest("dry"), dry_run="All")
    assert returned.metadata.name == "dry"
    assert returned.spec.selector.match_labels
    assert k8s_api.jobs() == [] and k8s_api.pods() == []
    with pytest.raises(ApiException) as caught:
        batch.create_namespaced_job(NS, job_manifest("Bad_Name"), dry_run="All")
    assert caught.value.status == 422


def test_label_and_field_selectors(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    for name, tier, chunk in [("a", "1", "x"), ("b", "2", "x"), ("c", "3", "y")]:
        manifest = job_manifest(name)
        manifest["metadata"]["labels"] = {"tier": tier, "chunk": chunk}
        batch.create_namespaced_job(NS, manifest)
    batch.create_namespaced_job(NS, {**job_manifest("d"), "metadata": {"name": "d"}})

    def names(**kwargs) -> list[str]:
        return [j.metadata.name for j in batch.list_namespaced_job(NS, **kwargs).items]

    assert names(label_selector="chunk=x") == ["a", "b"]
    assert names(label_selector="chunk==x,tier!=1") == ["b"]
    assert names(label_selector="tier in (1,3)") == ["a", "c"]
    assert names(label_selector="tier notin (1,3)") == ["b", "d"]
    assert names(label_selector="chunk") == ["a", "b", "c"]
    assert names(label_selector="!chunk") == ["d"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(label_selector="chunk=x", field_selector="metadata.name!=a") == ["b"]
    first = batch.list_namespaced_job(NS, limit=3)
    assert [j.metadata.name for j in first.items] == ["a", "b", "c"]
    rest = batch.list_namespaced_job(NS, limit=3, _continue=first.metadata._continue)
    assert [j.metadata.name for j in rest.items] == ["d"] and not rest.metadata._continue
    with pytest.raises(ApiException) as caught:
        batch.list_namespaced_job(NS, field_selector="spec.nope=1")
    assert caught.value.status == 400


def test_watch_streams_lifecycle_and_resumes(k8s_api, batch):
    listed = batch.list_namespaced_job(NS)
    start_rv = listed.metadata.resource_version
    batch.create_namespaced_job(NS, job_manifest("w1"))
    events = []
    stream = watch.Watch().stream(
        batch.list_namespaced_job, NS, resource_version=start_rv, timeout_seconds=30
    )
    for event in stream:
        events.append((event["type"], event["object"].metadata.name))
        job = event["object"]
        if any(c.type == "Complete" for c in job.status.conditions or ()):
            break
    assert events[0] == ("ADDED", "w1")
    assert events[-1][0] == "MODIFIED"
    resume_rv = job.metadata.resource_version
    batch.delete_namespaced_job("w1", NS, propagation_policy="Background")
    resumed = watch.Watch().stream(
        batch.list_namespaced_job, NS, resource_version=resume_rv, timeout_seconds=30
    )
    event = next(iter(resumed))
    assert (event["type"], event["object"].metadata.name) == ("DELETED", "w1")
    k8s_api.wait_for(lambda: not k8s_api.pods())


def test_watch_timeout_and_bookmarks(k8s_api, batch):
    k8s_api.bookmark_interval = 0.1
    rv = batch.list_namespaced_job(NS).metadata.resource_version
    events = list(
        watch.Watch().stream(
            batch.list_namespaced_job,
            NS,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=1,
        )
    )
    assert events == [], "the client hides BOOKMARK events and the watch ended at its timeout"
    assert k8s_api.requests.count("GET", "jobs", watch=True) == 1


def test_watch_from_a_compacted_version_is_410_gone(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    old_rv = batch.list_namespaced_job(NS).metadata.resource_version
    batch.create_namespaced_job(NS, job_manifest("g1"))
    k8s_api.compact()
    with pytest.raises(ApiException) as caught:
        for _ in watch.Watch().stream(
            batch.list_namespaced_job, NS, resource_version=old_rv, timeout_seconds=5
        ):
            pass
    assert caught.value.status == 410
    raw = batch.list_namespaced_job(
        NS, watch=True, resource_version=old_rv, timeout_seconds=5, _preload_content=False
    )
    first = json.loads(raw.readline())
    assert first["type"] == "ERROR"
    assert first["object"]["code"] == 410 and first["object"]["reason"] == "Expired"


def test_history_limit_bounds_resumption(tmp_path):
    from tests.k8s_double import start_double

    with start_double(kubelet="hold", history_limit=5, work_dir=tmp_path) as double:
        batch = client.BatchV1Api(config.new_client_from_config(str(double.kubeconfig)))
        rv = batch.list_namespaced_job(NS).metadata.resource_version
        for i in range(5):
            batch.create_namespaced_job(NS, job_manifest(f"h{i}"))
        with pytest.raises(ApiException) as caught:
            next(iter(watch.Watch().stream(batch.list_namespaced_job, NS, resource_version=rv)))
        assert caught.value.status == 410


def test_delete_propagation(k8s_api, batch, core):
    k8s_api.set_kubelet("hold")
    for name in ("bg", "fg", "orphan", "default"):
        batch.create_namespaced_job(NS, job_manifest(name))
        k8s_api.wait_for(lambda n=name: k8s_api.pods_of(n))
    pod_of = {name: k8s_api.pods_of(name)[0]["metadata"]["name"] for name in ("bg", "fg", "orphan")}
    batch.delete_namespaced_job("bg", NS, propagation_policy="Background")
    assert k8s_api.job("bg") is None
    k8s_api.wait_for(lambda: not any(p["metadata"]["name"] == pod_of["bg"] for p in k8s_api.pods()))
    rv = batch.list_namespaced_job(NS).metadata.resource_version
    batch.delete_namespaced_job("fg", NS, propagation_policy="Foreground")
    seen = []
    for event in watch.Watch().stream(
        batch.list_namespaced_job, NS, field_selector="metadata.name=fg", resource_version=rv
    ):
        seen.append((event["type"], event["object"].metadata.deletion_timestamp is not None))
        if event["type"] == "DELETED":
            break
    assert seen[0] == ("MODIFIED", True), "foreground: marked for deletion first"
    assert seen[-1][0] == "DELETED"
    assert not any(p["metadata"]["name"] == pod_of["fg"] for p in k8s_api.pods())
    batch.delete_namespaced_job("orphan", NS, propagation_policy="Orphan")
    batch.delete_namespaced_job("default", NS)
    assert k8s_api.job("orphan") is None and k8s_api.job("default") is None
    kept = core.read_namespaced_pod(pod_of["orphan"], NS)
    assert kept.metadata.owner_references is None


def test_pod_list_get_log_and_delete(k8s_api, batch, core):
    batch.create_namespaced_job(
        NS, job_manifest("talk", [sys.executable, "-c", "print('hello from the pod')"])
    )
    k8s_api.wait_for(lambda: k8s_api.job("talk")["status"].get("succeeded"))
    pods = core.list_namespaced_pod(NS, label_selector="job-name=talk").items
    assert len(pods) == 1
    pod = pods[0]
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert core.list_namespaced_pod(NS, field_selector="status.phase=Succeeded").items
    log = core.read_namespaced_pod_log(pod.metadata.name, NS)
    assert log == "hello from the pod\n"
    core.delete_namespaced_pod(pod.metadata.name, NS)
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod(pod.metadata.name, NS)
    assert caught.value.status == 404


def test_indexed_job_with_real_oom_reports_failed_indexes(k8s_api, batch, core):
    allocate = "import sys; i = int(sys.argv[1]); b = bytearray(200 * 2**20) if i == 1 else 0"
    manifest = job_manifest(
        "oom",
        [sys.executable, "-c", allocate + "; b = b and b[::4096]"],
        completions=3,
        parallelism=3,
        completionMode="Indexed",
        backoffLimitPerIndex=0,
        podFailurePolicy={
            "rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [137]}}]
        },
    )
    del manifest["spec"]["backoffLimit"]  # a global limit of 0 would fail the Job at once
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["/bin/sh", "-c", 'exec "$0" -c "$1" "$JOB_COMPLETION_INDEX"']
    container["args"] = [sys.executable, allocate]
    container["resources"] = {"limits": {"memory": "64Mi"}}
    batch.create_namespaced_job(NS, manifest)
    job = k8s_api.wait_for(lambda: _finished(k8s_api.job("oom")), timeout=120)
    status = job["status"]
    assert status["failedIndexes"] == "1"
    assert status["completedIndexes"] == "0,2"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Failed"]["reason"] == "FailedIndexes"
    assert "FailureTarget" in conditions
    failed = core.list_namespaced_pod(
        NS, label_selector="job-name=oom,batch.kubernetes.io/job-completion-index=1"
    ).items
    assert len(failed) == 1
    terminated = failed[0].status.container_statuses[0].state.terminated
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)
    assert failed[0].status.phase == "Failed"


def _finished(job: dict | None) -> dict | None:
    if job and any(
        c["type"] in ("Complete", "Failed") for c in job["status"].get("conditions", ())
    ):
        return job
    return None


# kubectl


@pytest.fixture
def kubectl(k8s_api: K8sDouble, tmp_path: Path):
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [
            "kubectl",
            f"--kubeconfig={k8s_api.kubeconfig}",
            f"--cache-dir={tmp_path / 'kube-cache'}",
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {done.stderr}")
        return done

    return run


def test_kubectl_apply_get_wait_logs_delete(k8s_api, kubectl, tmp_path):
    manifest = job_manifest("kube", [sys.executable, "-c", "print('from kubectl job')"])
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(manifest))
    applied = kubectl("apply", "--validate=false", "-f", str(path))
    assert "job.batch/kube created" in applied.stdout
    again = kubectl("apply", "--validate=false", "-f", str(path))
    assert "job.batch/kube unchanged" in again.stdout
    kubectl("wait", "--for=condition=complete", "job/kube", "--timeout=60s")
    listed = kubectl("get", "jobs")
    assert "kube" in listed.stdout and "Complete" in listed.stdout
    assert kubectl("logs", "job/kube").stdout == "from kubectl job\n"
    deleted = kubectl("delete", "job", "kube")
    assert 'job.batch "kube" deleted' in deleted.stdout
    assert k8s_api.job("kube") is None
