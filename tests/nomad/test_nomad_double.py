"""The Nomad double answers the unmodified python-nomad client the way Nomad does."""

from __future__ import annotations

import base64
import threading

import nomad
import pytest
import requests
from nomad.api import exceptions as errors

from sluice.backends.nomad.classify import classify
from sluice.backends.nomad.specs import SPEC_DIR, load_spec
from sluice.jobs import Outcome

BATCH = {
    "ID": "echo",
    "Type": "batch",
    "ParameterizedJob": {
        "Payload": "optional",
        "MetaRequired": ["word"],
        "MetaOptional": ["extra"],
    },
    "TaskGroups": [
        {
            "Name": "g",
            "ReschedulePolicy": {"Attempts": 0},
            "Tasks": [
                {
                    "Name": "say",
                    "Driver": "raw_exec",
                    "Config": {"command": "/bin/sh", "args": ["-c", "echo ${NOMAD_META_word}"]},
                    "DispatchPayload": {"File": "input.txt"},
                    "Resources": {"MemoryMB": 64},
                }
            ],
        }
    ],
}


@pytest.fixture
def client(nomad_api) -> nomad.Nomad:
    return nomad.Nomad(address=nomad_api.url, token=nomad_api.token)


def finish(client: nomad.Nomad, job_id: str) -> dict:
    """Block on the job (Nomad's blocking query) until it is dead; return it."""
    index = 0
    while True:
        response = client.job.request(job_id, method="get", params={"index": index, "wait": "30s"})
        job = response.json()
        if job["Status"] == "dead":
            return job
        index = int(response.headers["X-Nomad-Index"])


def test_acl_token_required(nomad_api):
    anonymous = nomad.Nomad(address=nomad_api.url)
    with pytest.raises(errors.URLNotAuthorizedNomadException) as error:
        anonymous.jobs.get_jobs()
    assert error.value.nomad_resp.text == "Permission denied"
    with pytest.raises(errors.URLNotAuthorizedNomadException):
        nomad.Nomad(address=nomad_api.url, token="wrong").jobs.get_jobs()


def test_register_dispatch_read_and_purge(client, nomad_api):
    client.job.register_job("echo", {"Job": BATCH})
    assert client.job.get_job("echo")["Status"] == "running"  # parameterized jobs run
    reply = client.job.dispatch_job(
        "echo",
        meta={"word": "hi"},
        payload=base64.b64encode(b"data").decode(),
        id_prefix_template="item-1",
    )
    job_id = reply["DispatchedJobID"]
    assert job_id.startswith("echo/dispatch-item-1-")
    assert client.evaluation.get_evaluation(reply["EvalID"])["JobID"] == job_id
    assert finish(client, job_id)["Meta"] == {"word": "hi"}
    [stub] = client.jobs.get_jobs(prefix="echo/")
    assert stub["ParentID"] == "echo" and stub["Status"] == "dead"
    summary = client.job.get_summary(job_id)["Summary"]["g"]
    assert summary["Complete"] == 1 and summary["Failed"] == 0
    assert client.job.get_summary("echo")["Children"] == {"Pending": 0, "Running": 0, "Dead": 1}
    assert nomad_api.peak_active("echo") == 1
    [alloc] = client.job.get_allocations(job_id)
    assert [e["Type"] for e in alloc["TaskStates"]["say"]["Events"]] == [
        "Received",
        "Task Setup",
        "Started",
        "Terminated",
    ]
    assert client.allocation.get_allocation(alloc["ID"])["Job"]["ID"] == job_id
    assert client.allocations.get_allocations(prefix=alloc["ID"][:8])[0]["ID"] == alloc["ID"]
    assert [e["JobID"] for e in client.job.get_evaluations(job_id)] == [job_id]
    logs = client.client.stream_logs
    assert logs.stream(alloc["ID"], "say", "stdout", plain=True) == "hi\n"
    framed = logs.stream(alloc["ID"], "say", "stdout")  # not plain: a JSON frame
    assert '"Data": "aGkK"' in framed
    assert client.client.cat.read_file(alloc["ID"], "say/local/input.txt") == "data"
    client.job.deregister_job(job_id, purge=True)
    with pytest.raises(errors.URLNotFoundNomadException):
        client.job.get_job(job_id)
    with pytest.raises(errors.URLNotFoundNomadException):
        client.job.deregister_job(job_id, purge=True)


def test_dispatch_checks_meta_and_payload_like_nomad(client):
    client.job.register_job("echo", {"Job": BATCH})
    with pytest.raises(errors.BadRequestNomadException) as missing:
        client.job.dispatch_job("echo", meta={})
    assert "Dispatch did not provide required meta keys: [word]" in missing.value.nomad_resp.text
    with pytest.raises(errors.BadRequestNomadException) as extra:
        client.job.dispatch_job("echo", meta={"word": "x", "aws_secret": "y"})
    assert "unpermitted metadata keys: [aws_secret]" in extra.value.nomad_resp.text
    plain = {**BATCH, "ID": "plain", "ParameterizedJob": None}
    client.job.register_job("plain", {"Job": plain})
    with pytest.raises(errors.BadRequestNomadException, match="not a parameterized job"):
        client.job.dispatch_job("plain", meta={"word": "x"})
    with pytest.raises(errors.URLNotFoundNomadException):
        client.job.dispatch_job("nope", meta={"word": "x"})


def test_idempotency_token_in_the_query_string(client, nomad_api):
    client.job.register_job("echo", {"Job": BATCH})
    ids = {
        client.job.request(
            "echo",
            "dispatch",
            method="post",
            json={"Meta": {"word": "x"}},
            params={"idempotency_token": "tok-1"},
        ).json()["DispatchedJobID"]
        for _ in range(3)
    }
    assert len(ids) == 1
    # python-nomad's own helper puts ``idempotency_token`` in the body, which Nomad's
    # decoder does not map to ``IdempotencyToken``: each call dispatches a new job.
    for _ in range(2):
        client.job.dispatch_job("echo", meta={"word": "y"}, idempotency_token="tok-2")
    assert len(client.jobs.get_jobs(prefix="echo/")) == 3


def test_booleans_parse_like_go(client, nomad_api):
    client.job.register_job("echo", {"Job": BATCH})
    for spelling in ("True", "true", "1"):
        job_id = client.job.dispatch_job("echo", meta={"word": "x"})["DispatchedJobID"]
        response = requests.delete(
            f"{nomad_api.url}/v1/job/{job_id}",
            params={"purge": spelling},
            headers={"X-Nomad-Token": nomad_api.token},
        )
        assert response.ok
        with pytest.raises(errors.URLNotFoundNomadException):
            client.job.get_job(job_id)
    response = requests.get(
        f"{nomad_api.url}/v1/jobs", params={"meta": "yes"}, headers={"X-Nomad-Token": "x"}
    )
    assert response.status_code == 403  # the token is checked first
    response = requests.get(
        f"{nomad_api.url}/v1/jobs",
        params={"meta": "yes"},
        headers={"X-Nomad-Token": nomad_api.token},
    )
    assert response.status_code == 400 and "as bool" in response.text


def test_blocking_query_returns_on_change_or_after_wait(client, nomad_api):
    client.job.register_job("echo", {"Job": BATCH})
    first = client.jobs.request(method="get", params={"prefix": "echo/"})
    index = int(first.headers["X-Nomad-Index"])
    idle = client.jobs.request(
        method="get", params={"prefix": "echo/", "index": index, "wait": "1s"}
    )
    assert int(idle.headers["X-Nomad-Index"]) == index and idle.json() == []
    answer = {}

    def watch():
        answer["response"] = client.jobs.request(
            method="get", params={"prefix": "echo/", "index": index, "wait": "60s"}, timeout=90
        )

    watcher = threading.Thread(target=watch)
    watcher.start()
    client.job.dispatch_job("echo", meta={"word": "x"})
    watcher.join(timeout=60)
    changed = answer["response"]
    assert int(changed.headers["X-Nomad-Index"]) > index
    assert len(changed.json()) == 1


def test_parse_hcl_then_register_and_dispatch(client):
    hcl = """
    # the seed's shape, reduced
    job "stage" {
      type = "batch"
      parameterized {
        payload       = "forbidden"
        meta_required = ["output_path"]
      }
      group "stage" {
        restart {
          attempts = 0
          mode     = "fail"
        }
        reschedule {
          attempts  = 0
          unlimited = false
        }
        task "stage" {
          driver = "docker"
          config {
            image   = "autoeval-jobs:local"
            command = "/bin/sh"
            args    = ["-c", "echo wrote ${NOMAD_META_output_path}"]
          }
          resources {
            cpu    = 1000
            memory = 64
          }
        }
      }
    }
    """
    job = client.jobs.parse(hcl)
    assert job["ParameterizedJob"]["MetaRequired"] == ["output_path"]
    assert job["TaskGroups"][0]["Tasks"][0]["Resources"] == {"CPU": 1000, "MemoryMB": 64}
    client.job.register_job("stage", {"Job": job})
    job_id = client.job.dispatch_job("stage", meta={"output_path": "o.tif"})["DispatchedJobID"]
    finish(client, job_id)
    [alloc] = client.job.get_allocations(job_id)
    assert client.client.stream_logs.stream(alloc["ID"], "stage", "stdout", plain=True) == (
        "wrote o.tif\n"
    )
    with pytest.raises(errors.BadRequestNomadException, match="not supported"):
        client.jobs.parse('job "x" {\n  vault {\n    policies = ["a"]\n  }\n}\n')


def test_restart_policy_restarts_in_place(client):
    job = {**BATCH, "ID": "flaky"}
    job["TaskGroups"] = [
        {
            **BATCH["TaskGroups"][0],
            "RestartPolicy": {"Attempts": 2, "Mode": "fail"},
            "Tasks": [{**BATCH["TaskGroups"][0]["Tasks"][0], "Config": {"command": "false"}}],
        }
    ]
    client.job.register_job("flaky", {"Job": job})
    job_id = client.job.dispatch_job("flaky", meta={"word": "x"})["DispatchedJobID"]
    finish(client, job_id)
    [alloc] = client.job.get_allocations(job_id)
    state = alloc["TaskStates"]["say"]
    assert alloc["ClientStatus"] == "failed"
    assert state["Restarts"] == 2 and state["Failed"] is True
    assert [e["Type"] for e in state["Events"]].count("Started") == 3
    assert state["Events"][-1]["Type"] == "Not Restarting"


def test_lost_allocation_is_replaced_within_the_job(client, nomad_api):
    client.job.register_job("echo", {"Job": BATCH})
    nomad_api.lose_next_allocation("echo/dispatch-")
    job_id = client.job.dispatch_job("echo", meta={"word": "x"})["DispatchedJobID"]
    finish(client, job_id)
    allocs = sorted(client.job.get_allocations(job_id), key=lambda a: a["CreateIndex"])
    assert [a["ClientStatus"] for a in allocs] == ["lost", "complete"]
    assert allocs[0]["NextAllocation"] == allocs[1]["ID"]
    assert allocs[1]["PreviousAllocation"] == allocs[0]["ID"]
    summary = client.job.get_summary(job_id)["Summary"]["g"]
    assert (summary["Lost"], summary["Complete"]) == (1, 1)
    assert len(client.jobs.get_jobs(prefix="echo/")) == 1  # no new dispatch ID


def test_variables_and_templates(client, nomad_api):
    client.variable.create_variable("nomad/jobs/hand_inundator", {"Items": {"K": "v"}})
    assert client.variable.get_variable("nomad/jobs/hand_inundator")["Items"] == {"K": "v"}
    with pytest.raises(errors.VariableConflict):
        client.variable.create_variable("nomad/jobs/hand_inundator", {"Items": {"K": "w"}}, cas=0)
    stage = load_spec("hand_inundator", SPEC_DIR)
    stage["TaskGroups"][0]["Tasks"][0]["Config"] = {
        "command": "/bin/sh",
        "args": ["-c", 'echo "K=$K"'],
    }
    client.job.register_job("hand_inundator", {"Job": stage})
    meta = {"catchment_data_path": "c", "forecast_path": "f", "output_path": "o"}
    job_id = client.job.dispatch_job("hand_inundator", meta=meta)["DispatchedJobID"]
    finish(client, job_id)
    [alloc] = client.job.get_allocations(job_id)
    assert client.client.stream_logs.stream(
        alloc["ID"], "hand_inundator", "stdout", plain=True
    ) == ("K=v\n")
    env_file = client.client.cat.read_file(alloc["ID"], "hand_inundator/secrets/sluice.env")
    assert env_file == "K=v\n"
    client.variable.delete_variable("nomad/jobs/hand_inundator")
    with pytest.raises(errors.URLNotFoundNomadException):
        client.variable.get_variable("nomad/jobs/hand_inundator")


def test_template_waits_for_a_missing_variable(client, nomad_api):
    stage = load_spec("hand_inundator", SPEC_DIR)
    stage["TaskGroups"][0]["Tasks"][0]["Config"] = {"command": "/bin/sh", "args": ["-c", "true"]}
    client.job.register_job("hand_inundator", {"Job": stage})
    meta = {"catchment_data_path": "c", "forecast_path": "f", "output_path": "o"}
    job_id = client.job.dispatch_job("hand_inundator", meta=meta)["DispatchedJobID"]
    index = 0
    while True:  # block on the job's allocations until the template reports the missing var
        response = client.job.request(
            job_id, "allocations", method="get", params={"index": index, "wait": "30s"}
        )
        index = int(response.headers["X-Nomad-Index"])
        events = [e for a in response.json() for e in a["TaskStates"]["hand_inundator"]["Events"]]
        if any(e["Type"] == "Template" for e in events):
            break
    assert "Missing: nomadVar.block(nomad/jobs/hand_inundator" in events[-1]["DisplayMessage"]
    assert client.job.get_job(job_id)["Status"] == "running"
    client.variable.create_variable("nomad/jobs/hand_inundator", {"Items": {"K": "v"}})
    finish(client, job_id)
    assert client.job.get_allocations(job_id)[0]["ClientStatus"] == "complete"


def test_failed_allocation_rescheduled_per_policy(client):
    job = {**BATCH, "ID": "retry"}
    job["TaskGroups"] = [
        {
            **BATCH["TaskGroups"][0],
            "ReschedulePolicy": {"Attempts": 1, "Unlimited": False},
            "Tasks": [{**BATCH["TaskGroups"][0]["Tasks"][0], "Config": {"command": "false"}}],
        }
    ]
    client.job.register_job("retry", {"Job": job})
    job_id = client.job.dispatch_job("retry", meta={"word": "x"})["DispatchedJobID"]
    finish(client, job_id)
    first, second = sorted(client.job.get_allocations(job_id), key=lambda a: a["CreateIndex"])
    assert (first["ClientStatus"], second["ClientStatus"]) == ("failed", "failed")
    assert first["NextAllocation"] == second["ID"]
    assert second["RescheduleTracker"]["Events"][0]["PrevAllocID"] == first["ID"]
    assert second["NextAllocation"] == ""  # attempts exhausted


def test_namespaces_are_separate(nomad_api):
    science = nomad.Nomad(address=nomad_api.url, token=nomad_api.token, namespace="science")
    default = nomad.Nomad(address=nomad_api.url, token=nomad_api.token)
    science.job.register_job("echo", {"Job": BATCH})
    assert [j["ID"] for j in science.jobs.get_jobs()] == ["echo"]
    assert default.jobs.get_jobs() == []
    with pytest.raises(errors.URLNotFoundNomadException):
        default.job.get_job("echo")


def test_a_missing_program_is_a_driver_failure(client):
    job = {**BATCH, "ID": "broken"}
    job["TaskGroups"] = [
        {
            **BATCH["TaskGroups"][0],
            "Tasks": [{**BATCH["TaskGroups"][0]["Tasks"][0], "Config": {"command": "/no/such"}}],
        }
    ]
    client.job.register_job("broken", {"Job": job})
    job_id = client.job.dispatch_job("broken", meta={"word": "x"})["DispatchedJobID"]
    finish(client, job_id)
    [alloc] = client.job.get_allocations(job_id)
    assert alloc["ClientStatus"] == "failed"
    last = alloc["TaskStates"]["say"]["Events"][-1]
    assert last["Type"] == "Driver Failure" and "/no/such" in last["DisplayMessage"]
    result = classify("broken", [alloc])  # how the backend reads it
    assert result.outcome is Outcome.FAILED and result.exit_code is None
    assert "/no/such" in result.message
