"""The Kubernetes API double behaves like the real API for the official client and kubectl."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

import pytest
import urllib3
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


def test_generate_name_unknown_namespace_and_bad_bodies(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    manifest = job_manifest("x")
    manifest["metadata"] = {"generateName": "gen-"}
    created = batch.create_namespaced_job(NS, manifest)
    assert created.metadata.name.startswith("gen-") and len(created.metadata.name) == 9
    with pytest.raises(ApiException) as caught:
        batch.create_namespaced_job("elsewhere", job_manifest("x"))
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == 'namespaces "elsewhere" not found'
    conn = http.client.HTTPConnection("127.0.0.1", int(k8s_api.url.rsplit(":", 1)[1]))
    conn.request("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", b"{not json")
    response = conn.getresponse()
    assert response.status == 400 and json.loads(response.read())["reason"] == "BadRequest"


def test_a_command_that_cannot_start_is_start_error(k8s_api, batch):
    batch.create_namespaced_job(NS, job_manifest("nostart", ["/nonexistent/program"]))
    job = k8s_api.wait_for(lambda: _finished(k8s_api.job("nostart")))
    assert "Failed" in _conditions(job)
    (pod,) = k8s_api.pods_of("nostart")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("StartError", 128)


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
    k8s_api.set_kubelet("hold")
    rv = batch.list_namespaced_job(NS).metadata.resource_version
    batch.create_namespaced_job(NS, job_manifest("other"))
    current = batch.list_namespaced_job(NS).metadata.resource_version
    events = list(
        watch.Watch().stream(
            batch.list_namespaced_job,
            NS,
            label_selector="app=none",
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=1,
        )
    )
    assert events, "idle watches get bookmarks"
    assert {e["type"] for e in events} == {"BOOKMARK"}
    assert int(events[-1]["raw_object"]["metadata"]["resourceVersion"]) >= int(current)
    assert k8s_api.requests.count("GET", "jobs", watch=True) == 1, "ended by its timeout"


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
    # status updates of the Job controller (not marked) may come before the deletion
    marked = [entry for entry in seen if entry != ("MODIFIED", False)]
    assert marked[0] == ("MODIFIED", True), "foreground: marked for deletion first"
    assert seen[-1][0] == "DELETED"
    assert not any(p["metadata"]["name"] == pod_of["fg"] for p in k8s_api.pods())
    batch.delete_namespaced_job("orphan", NS, propagation_policy="Orphan")
    batch.delete_namespaced_job("default", NS)
    assert k8s_api.job("orphan") is None and k8s_api.job("default") is None
    kept = core.read_namespaced_pod(pod_of["orphan"], NS)
    assert kept.metadata.owner_references is None
    default_pods = [p for p in k8s_api.pods() if p["metadata"]["labels"]["job-name"] == "default"]
    assert len(default_pods) == 1, "no propagationPolicy: batch/v1 orphans the pods"


def test_delete_collection_by_label(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    for name, chunk in (("c1", "a"), ("c2", "a"), ("c3", "b")):
        batch.create_namespaced_job(
            NS, {**job_manifest(name), "metadata": {"name": name, "labels": {"chunk": chunk}}}
        )
    batch.delete_collection_namespaced_job(
        NS, label_selector="chunk=a", propagation_policy="Background"
    )
    assert [j["metadata"]["name"] for j in k8s_api.jobs()] == ["c3"]
    k8s_api.wait_for(
        lambda: {p["metadata"]["labels"]["job-name"] for p in k8s_api.pods()} == {"c3"}
    )


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


def _conditions(job: dict) -> dict[str, dict]:
    return {c["type"]: c for c in job["status"].get("conditions", ())}


def _running(k8s_api: K8sDouble, job: str, count: int = 1) -> list[dict]:
    """Wait until ``job`` has ``count`` running pods not being deleted (hold mode); return
    them. A deleted pod stays Running, with a deletionTimestamp, until its process ends."""

    def running() -> list[dict] | None:
        pods = [
            p
            for p in k8s_api.pods_of(job)
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]
        return pods if len(pods) >= count else None

    return k8s_api.wait_for(running)


def test_nonindexed_parallelism_completions_and_backoff(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    batch.create_namespaced_job(
        NS, job_manifest("par", completions=3, parallelism=2, backoffLimit=1)
    )
    first, second = _running(k8s_api, "par", 2)
    assert len(k8s_api.pods_of("par")) == 2, "parallelism bounds the running pods"
    k8s_api.finish_pod(first["metadata"]["name"], 0)
    _running(k8s_api, "par", 2)
    k8s_api.finish_pod(second["metadata"]["name"], 3)
    job = k8s_api.wait_for(lambda: (j := k8s_api.job("par"))["status"].get("failed") and j)
    assert job["status"]["failed"] == 1 and job["status"]["succeeded"] == 1
    for pod in _running(k8s_api, "par", 2):
        k8s_api.finish_pod(pod["metadata"]["name"], 0)
    job = k8s_api.wait_for(lambda: _finished(k8s_api.job("par")))
    assert _conditions(job)["Complete"]["status"] == "True"
    assert job["status"]["succeeded"] == 3 and job["status"]["completionTime"]
    assert len(k8s_api.pods_of("par")) == 4


def test_backoff_limit_exceeded(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    batch.create_namespaced_job(NS, job_manifest("flaky", backoffLimit=1))
    for _ in range(2):
        (pod,) = _running(k8s_api, "flaky")
        k8s_api.finish_pod(pod["metadata"]["name"], 1)
    job = k8s_api.wait_for(lambda: _finished(k8s_api.job("flaky")))
    conditions = _conditions(job)
    assert conditions["Failed"]["reason"] == "BackoffLimitExceeded"
    assert conditions["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 2 and "completionTime" not in job["status"]


def test_a_running_pod_deleted_counts_as_failed_and_is_replaced(k8s_api, batch, core):
    k8s_api.set_kubelet("hold")
    batch.create_namespaced_job(NS, job_manifest("victim", backoffLimit=1))
    (pod,) = _running(k8s_api, "victim")
    core.delete_namespaced_pod(pod["metadata"]["name"], NS)
    (replacement,) = _running(k8s_api, "victim")
    assert replacement["metadata"]["name"] != pod["metadata"]["name"]
    k8s_api.wait_for(lambda: k8s_api.job("victim")["status"].get("failed") == 1)


def test_deleting_a_running_pod_is_graceful_and_kubectl_waits_for_it(k8s_api, batch, core):
    """SIGTERM first: ``sleep`` dies of it (143); the Job (backoffLimit 0) fails, no new pod."""
    batch.create_namespaced_job(NS, job_manifest("term", ["sleep", "300"]))
    (pod,) = _running(k8s_api, "term")
    deleted = subprocess.run(
        ["kubectl", "delete", "pod", pod["metadata"]["name"], "--kubeconfig", k8s_api.kubeconfig],
        capture_output=True,
        text=True,
        timeout=60,
    )  # waits until the pod is gone
    assert deleted.returncode == 0, deleted.stderr
    assert k8s_api.pods_of("term") == []
    job = k8s_api.wait_for(lambda: _finished(k8s_api.job("term")))
    assert _conditions(job)["Failed"]["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 1 and "succeeded" not in job["status"]


def test_a_pod_that_ignores_sigterm_is_killed_when_its_grace_period_ends(k8s_api, batch, core):
    ignoring = ["sh", "-c", "trap '' TERM; sleep 300"]
    batch.create_namespaced_job(NS, job_manifest("stubborn", ignoring, backoffLimit=1))
    (pod,) = _running(k8s_api, "stubborn")
    name = pod["metadata"]["name"]
    answer = core.delete_namespaced_pod(name, NS, grace_period_seconds=1)
    assert answer.metadata.deletion_timestamp is not None
    assert answer.metadata.deletion_grace_period_seconds == 1
    # TerminatingOrFailed: the replacement starts while the first pod is still terminating
    k8s_api.wait_for(lambda: k8s_api.job("stubborn")["status"].get("terminating") == 1)
    events = watch.Watch().stream(
        core.list_namespaced_pod,
        NS,
        field_selector=f"metadata.name={name}",
        resource_version=pod["metadata"]["resourceVersion"],
        timeout_seconds=60,
    )
    gone = next(e["object"] for e in events if e["type"] == "DELETED")
    terminated = gone.status.container_statuses[0].state.terminated
    assert (gone.status.phase, terminated.exit_code) == ("Failed", 137)  # SIGKILL
    assert k8s_api.job("stubborn")["status"]["failed"] == 1


def test_pod_failure_policy_fail_job_and_ignore_disruption(k8s_api, batch, core):
    k8s_api.set_kubelet("hold")
    policy = {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
        ]
    }
    batch.create_namespaced_job(NS, job_manifest("pfp", backoffLimit=0, podFailurePolicy=policy))
    (pod,) = _running(k8s_api, "pfp")
    k8s_api.evict_pod(pod["metadata"]["name"])
    evicted = core.read_namespaced_pod(pod["metadata"]["name"], NS)
    assert (evicted.status.phase, evicted.status.reason) == ("Failed", "Evicted")
    assert any(
        c.type == "DisruptionTarget" and c.status == "True" for c in evicted.status.conditions
    )
    (replacement,) = _running(k8s_api, "pfp")
    assert replacement["metadata"]["name"] != pod["metadata"]["name"]
    assert "failed" not in k8s_api.job("pfp")["status"], "Ignore: not counted"
    k8s_api.finish_pod(replacement["metadata"]["name"], 42)
    job = k8s_api.wait_for(lambda: _finished(k8s_api.job("pfp")))
    failed = _conditions(job)["Failed"]
    assert failed["reason"] == "PodFailurePolicy"
    assert "exit code 42 matching FailJob rule at index 0" in failed["message"]


def test_evicting_a_running_process_kills_it_and_keeps_the_eviction(k8s_api, batch, core):
    batch.create_namespaced_job(NS, job_manifest("sleeper", ["sleep", "300"]))
    (pod,) = _running(k8s_api, "sleeper")
    name = pod["metadata"]["name"]
    k8s_api.evict_pod(name)
    job = k8s_api.wait_for(lambda: _finished(k8s_api.job("sleeper")))
    assert _conditions(job)["Failed"]["reason"] == "BackoffLimitExceeded"
    read = core.read_namespaced_pod(name, NS)
    assert (read.status.phase, read.status.reason) == ("Failed", "Evicted")


def test_oom_killed_with_exit_code_zero_succeeds_like_kubernetes_issue_131530(k8s_api, batch, core):
    k8s_api.set_kubelet("hold")
    batch.create_namespaced_job(NS, job_manifest("quiet-oom"))
    (pod,) = _running(k8s_api, "quiet-oom")
    k8s_api.finish_pod(pod["metadata"]["name"], 0, "OOMKilled")
    job = k8s_api.wait_for(lambda: _finished(k8s_api.job("quiet-oom")))
    assert "Complete" in _conditions(job), "the Job controller trusts the pod phase"
    read = core.read_namespaced_pod(pod["metadata"]["name"], NS)
    terminated = read.status.container_statuses[0].state.terminated
    assert (read.status.phase, terminated.reason, terminated.exit_code) == (
        "Succeeded",
        "OOMKilled",
        0,
    )


def test_indexed_pods_and_max_failed_indexes(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    manifest = job_manifest(
        "idx",
        completions=4,
        parallelism=4,
        completionMode="Indexed",
        backoffLimitPerIndex=1,
        maxFailedIndexes=0,
    )
    del manifest["spec"]["backoffLimit"]  # defaults to MaxInt32 with backoffLimitPerIndex
    batch.create_namespaced_job(NS, manifest)
    pods = _running(k8s_api, "idx", 4)
    by_index = {
        p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]: p for p in pods
    }
    assert sorted(by_index) == ["0", "1", "2", "3"]
    two = by_index["2"]
    assert two["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "2"
    assert two["spec"]["hostname"] == "idx-2"
    env = two["spec"]["containers"][0]["env"]
    assert env[-1]["name"] == "JOB_COMPLETION_INDEX"
    k8s_api.finish_pod(by_index["0"]["metadata"]["name"], 0)
    k8s_api.finish_pod(two["metadata"]["name"], 1)
    retry = k8s_api.wait_for(
        lambda: [
            p
            for p in k8s_api.pods_of("idx")
            if p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "2"
            and p["status"]["phase"] == "Running"
        ]
    )[0]
    assert retry["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"
    k8s_api.finish_pod(retry["metadata"]["name"], 1)
    job = k8s_api.wait_for(lambda: _finished(k8s_api.job("idx")))
    assert _conditions(job)["Failed"]["reason"] == "MaxFailedIndexesExceeded"
    assert job["status"]["failedIndexes"] == "2" and job["status"]["completedIndexes"] == "0"
    k8s_api.wait_for(
        lambda: (
            all(p["status"]["phase"] in ("Succeeded", "Failed") for p in k8s_api.pods_of("idx"))
            and len(k8s_api.pods_of("idx")) == 3
        ),
    )


def test_active_deadline_fails_the_job(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    batch.create_namespaced_job(NS, job_manifest("slow", activeDeadlineSeconds=1))
    # The held pod never ends by itself, so only the deadline can finish the Job. (Not
    # waiting to see the pod Running: on a slow moment the 1 s deadline comes first.)
    job = k8s_api.wait_for(lambda: _finished(k8s_api.job("slow")), timeout=30)
    assert _conditions(job)["Failed"]["reason"] == "DeadlineExceeded"
    k8s_api.wait_for(lambda: not k8s_api.pods_of("slow"))


def test_instant_kubelet_outcomes(k8s_api, batch):
    def outcome(pod: dict) -> tuple[int, str] | None:
        return (137, "OOMKilled") if pod["metadata"]["labels"]["job-name"] == "big" else None

    k8s_api.set_kubelet("instant", outcome)
    batch.create_namespaced_job(NS, job_manifest("small"))
    batch.create_namespaced_job(NS, job_manifest("big"))
    assert "Complete" in _conditions(k8s_api.wait_for(lambda: _finished(k8s_api.job("small"))))
    assert "Failed" in _conditions(k8s_api.wait_for(lambda: _finished(k8s_api.job("big"))))
    (pod,) = k8s_api.pods_of("big")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)


def test_patch_replace_and_conflicts(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    created = batch.create_namespaced_job(NS, job_manifest("p"))
    patched = batch.patch_namespaced_job("p", NS, {"metadata": {"labels": {"extra": "yes"}}})
    assert patched.metadata.labels["extra"] == "yes" and patched.metadata.generation == 1
    patched = batch.patch_namespaced_job("p", NS, {"spec": {"parallelism": 0}})
    assert patched.spec.parallelism == 0 and patched.metadata.generation == 2
    with pytest.raises(ApiException) as caught:
        batch.patch_namespaced_job(
            "p", NS, {"spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}}
        )
    assert caught.value.status == 422 and "immutable" in status_of(caught.value)["message"]
    stale = batch.read_namespaced_job("p", NS)
    stale.metadata.resource_version = created.metadata.resource_version
    with pytest.raises(ApiException) as caught:
        batch.replace_namespaced_job("p", NS, stale)
    assert caught.value.status == 409 and status_of(caught.value)["reason"] == "Conflict"


def test_watch_sees_objects_leave_its_selector(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    batch.create_namespaced_job(NS, job_manifest("mover"))
    rv = batch.list_namespaced_job(NS).metadata.resource_version
    batch.patch_namespaced_job("mover", NS, {"metadata": {"labels": {"tier": "2"}}})
    stream = watch.Watch().stream(
        batch.list_namespaced_job,
        NS,
        label_selector="tier=1",
        resource_version=rv,
        timeout_seconds=60,
    )
    # the Job controller may still update the Job's status (tier 1) between the list and
    # the patch; the patch itself must arrive as the Job leaving the selector
    seen = []
    for event in stream:
        seen.append((event["type"], event["object"].metadata.labels["tier"]))
        if event["type"] != "MODIFIED":
            break
    assert seen[-1] == ("DELETED", "2")
    assert set(seen[:-1]) <= {("MODIFIED", "1")}


def test_faults_answer_429_500_and_resets(k8s_api, batch):
    k8s_api.set_faults(1.0, kinds=("429",))
    with pytest.raises(ApiException) as caught:
        batch.create_namespaced_job(NS, job_manifest("f"))
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "1"
    assert status_of(caught.value)["reason"] == "TooManyRequests"
    k8s_api.set_faults(1.0, kinds=("500",))
    with pytest.raises(ApiException) as caught:
        batch.read_namespaced_job("f", NS)
    assert caught.value.status == 500
    k8s_api.set_faults(1.0, kinds=("reset",))
    with pytest.raises(urllib3.exceptions.HTTPError):
        batch.create_namespaced_job(NS, job_manifest("f"))
    assert k8s_api.jobs() == []
    k8s_api.set_faults(1.0, kinds=("reset-after",))
    with pytest.raises(urllib3.exceptions.HTTPError):
        batch.create_namespaced_job(NS, job_manifest("f"))
    k8s_api.set_faults(0)
    assert [j["metadata"]["name"] for j in k8s_api.jobs()] == ["f"], "acted on, then reset"
    assert k8s_api.faults.injected["reset-after"] == 1


def test_faults_follow_the_seed_and_spare_discovery(k8s_api):
    def pattern() -> list[int]:
        k8s_api.set_faults(0.5, kinds=("429", "500"), seed=7)
        conn = http.client.HTTPConnection("127.0.0.1", int(k8s_api.url.rsplit(":", 1)[1]))
        codes = []
        for _ in range(20):
            conn.request("GET", f"/apis/batch/v1/namespaces/{NS}/jobs")
            response = conn.getresponse()
            response.read()
            codes.append(response.status)
        conn.request("GET", "/version")
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["minor"] == "32"
        return codes

    first = pattern()
    assert first == pattern()
    assert {200, 429, 500} == set(first)


def test_denied_verbs_are_403_naming_the_verb(k8s_api, batch):
    k8s_api.deny("create", "jobs")
    with pytest.raises(ApiException) as caught:
        batch.create_namespaced_job(NS, job_manifest("nope"))
    assert caught.value.status == 403
    assert (
        'cannot create resource "jobs" in API group "batch"' in status_of(caught.value)["message"]
    )


def test_request_log_counts_by_method_kind_and_watch(k8s_api, batch, core):
    k8s_api.set_kubelet("hold")
    batch.create_namespaced_job(NS, job_manifest("counted"))
    batch.read_namespaced_job("counted", NS)
    batch.read_namespaced_job_status("counted", NS)
    rv = batch.list_namespaced_job(NS).metadata.resource_version
    list(
        watch.Watch().stream(batch.list_namespaced_job, NS, resource_version=rv, timeout_seconds=1)
    )
    core.list_namespaced_pod(NS, label_selector="job-name=counted")
    log = k8s_api.requests
    assert log.count("POST", "jobs") == 1
    assert log.count("GET", "jobs/{name}") == 1
    assert log.count("GET", "jobs/{name}/status") == 1
    assert log.count("GET", "jobs", watch=False) == 1
    assert log.count("GET", "jobs", watch=True) == 1
    assert log.count(kind="pods") == 1
    assert log.total == 6


def test_pod_log_options_and_pending_pods(k8s_api, batch, core):
    k8s_api.set_kubelet("hold")
    batch.create_namespaced_job(NS, job_manifest("lines"))
    (pod,) = _running(k8s_api, "lines")
    name = pod["metadata"]["name"]
    k8s_api.finish_pod(name, 0, log="one\ntwo\nthree\n")
    assert core.read_namespaced_pod_log(name, NS, tail_lines=2) == "two\nthree\n"
    assert core.read_namespaced_pod_log(name, NS, limit_bytes=3) == "one"
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log(name, NS, container="other")
    assert caught.value.status == 400


def test_runs_as_its_own_process(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.k8s_double", "--kubelet", "instant", "--work-dir", tmp_path],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        info = json.loads(proc.stdout.readline())
        batch = client.BatchV1Api(config.new_client_from_config(info["kubeconfig"]))
        batch.create_namespaced_job(NS, job_manifest("apart"))
        assert [j.metadata.name for j in batch.list_namespaced_job(NS).items] == ["apart"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


# kubectl


def kubectl_command(k8s_api: K8sDouble, tmp_path: Path) -> list[str]:
    return ["kubectl", f"--kubeconfig={k8s_api.kubeconfig}", f"--cache-dir={tmp_path / 'kc'}"]


@pytest.fixture
def kubectl(k8s_api: K8sDouble, tmp_path: Path):
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [*kubectl_command(k8s_api, tmp_path), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {done.stderr}")
        return done

    return run


def test_kubectl_apply_get_wait_logs_delete(k8s_api, kubectl, tmp_path):
    manifest = job_manifest("kube", [sys.executable, "-c", "print('from kubectl job')"])
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(manifest))
    applied = kubectl("apply", "-f", str(path))
    assert "job.batch/kube created" in applied.stdout
    again = kubectl("apply", "-f", str(path))
    assert "job.batch/kube unchanged" in again.stdout
    server_side = kubectl("apply", "--server-side", "-f", str(path))
    assert "job.batch/kube serverside-applied" in server_side.stdout
    kubectl("wait", "--for=condition=complete", "job/kube", "--timeout=60s")
    listed = kubectl("get", "jobs")
    assert "kube" in listed.stdout and "Complete" in listed.stdout
    assert kubectl("logs", "job/kube").stdout == "from kubectl job\n"
    deleted = kubectl("delete", "job", "kube")
    assert 'job.batch "kube" deleted' in deleted.stdout
    assert k8s_api.job("kube") is None


def test_kubectl_server_side_apply_creates_and_get_shows_failures(k8s_api, kubectl, tmp_path):
    k8s_api.set_kubelet("instant", lambda pod: (1, "Error"))
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(job_manifest("ssa")))
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", str(path)).stdout
    kubectl("wait", "--for=condition=failed", "job/ssa", "--timeout=60s")
    assert "Failed" in kubectl("get", "job", "ssa").stdout
    pods = json.loads(kubectl("get", "pods", "-l", "job-name=ssa", "-o", "json").stdout)
    (pod,) = pods["items"]
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1


def test_watch_send_initial_events_ends_with_a_marked_bookmark(k8s_api, batch):
    k8s_api.set_kubelet("hold")
    batch.create_namespaced_job(NS, job_manifest("initial"))
    raw = batch.list_namespaced_job(
        NS,
        watch=True,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        allow_watch_bookmarks=True,
        timeout_seconds=5,
        _preload_content=False,
    )
    first, second = json.loads(raw.readline()), json.loads(raw.readline())
    raw.release_conn()
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "initial")
    assert second["type"] == "BOOKMARK"
    annotations = second["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


def test_kubectl_get_watch_prints_table_rows(k8s_api, tmp_path):
    k8s_api.set_kubelet("hold")
    client.BatchV1Api(config.new_client_from_config(str(k8s_api.kubeconfig))).create_namespaced_job(
        NS, job_manifest("tw")
    )
    (pod,) = _running(k8s_api, "tw")
    command = [*kubectl_command(k8s_api, tmp_path), "get", "jobs", "-w", "--request-timeout=60s"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().split()[:3] == ["NAME", "STATUS", "COMPLETIONS"]
        assert proc.stdout.readline().split()[:3] == ["tw", "Running", "0/1"]
        k8s_api.finish_pod(pod["metadata"]["name"], 0)
        for line in proc.stdout:
            if line.split()[:3] == ["tw", "Complete", "1/1"]:
                break
        else:
            raise AssertionError("kubectl get -w never showed the Job complete")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
