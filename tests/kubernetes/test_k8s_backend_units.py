"""Pure parts of the Kubernetes backend: classification, manifests, grouping, retry waits."""

from __future__ import annotations

import pytest
import tenacity
from kubernetes.client.exceptions import ApiException

from sluice.backends.kubernetes.classify import classify_pod, parse_indexes, terminal_condition
from sluice.backends.kubernetes.client import backoff_wait, is_retryable
from sluice.backends.kubernetes.indexed import group, indexed_manifest, indexed_name
from sluice.backends.kubernetes.manifests import job_manifest
from sluice.errors import SluiceInputError
from sluice.jobs import JobSpec, Outcome

MiB = 2**20


def pod(terminated: dict | None, *, limit: str | None = "64Mi", **status) -> dict:
    container = {"name": "main", "resources": {"limits": {"memory": limit}} if limit else {}}
    statuses = [{"name": "main", "state": {"terminated": terminated}}] if terminated else []
    return {
        "metadata": {"name": "p-1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [container]},
        "status": {"phase": "Failed", "containerStatuses": statuses, **status},
    }


@pytest.mark.parametrize(
    ("the_pod", "outcome", "exit_code"),
    [
        (pod({"exitCode": 137, "reason": "OOMKilled"}), Outcome.OOM, 137),
        # kubernetes#131530 inside a FAILED Job: the kernel killed for memory -> oom
        (pod({"exitCode": 0, "reason": "OOMKilled"}), Outcome.OOM, 0),
        (pod({"exitCode": 137, "reason": "Error"}), Outcome.OOM, 137),
        (pod({"exitCode": 137, "reason": "Error"}, limit=None), Outcome.FAILED, 137),
        (pod({"exitCode": 3, "reason": "Error"}), Outcome.FAILED, 3),
        # kubernetes#140716: drained pod reported OOMKilled/143 -> the disruption wins
        (
            pod(
                {"exitCode": 143, "reason": "OOMKilled"},
                conditions=[
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "EvictionByEvictionAPI",
                    }
                ],
            ),
            Outcome.LOST,
            None,
        ),
        (pod({"exitCode": 137, "reason": "Error"}, reason="Evicted"), Outcome.LOST, None),
        (pod(None, reason="NodeLost"), Outcome.LOST, None),
        (pod(None, reason="DeadlineExceeded"), Outcome.TIMEOUT, None),
        (pod(None, message="image pull failed"), Outcome.FAILED, None),
        (None, Outcome.LOST, None),
    ],
)
def test_classify_failed_pod(the_pod, outcome, exit_code) -> None:
    result = classify_pod("item", the_pod)
    assert (result.outcome, result.exit_code) == (outcome, exit_code)
    assert result.name == "item" and result.message


def test_oomkilled_exit_zero_message_names_the_issue() -> None:
    result = classify_pod("item", pod({"exitCode": 0, "reason": "OOMKilled"}))
    assert "131530" in result.message


def test_terminal_condition_ignores_interim_conditions() -> None:
    job = {"status": {"conditions": [{"type": "FailureTarget", "status": "True"}]}}
    assert terminal_condition(job) is None
    job["status"]["conditions"].append(
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}
    )
    assert terminal_condition(job) == ("Failed", "DeadlineExceeded")


def test_parse_indexes() -> None:
    assert parse_indexes("1,3-5,9") == {1, 3, 4, 5, 9}
    assert parse_indexes("") == set() and parse_indexes(None) == set()


TEMPLATE = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {
        "name": "wetlands",
        "uid": "u-1",
        "resourceVersion": "9",
        "labels": {"app": "w", "controller-uid": "u-1", "batch.kubernetes.io/job-name": "w"},
    },
    "spec": {
        "selector": {"matchLabels": {"controller-uid": "u-1"}},
        "completionMode": "Indexed",
        "completions": 18587,
        "ttlSecondsAfterFinished": 3600,
        "template": {
            "metadata": {"labels": {"job-name": "wetlands", "app": "w"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": "img",
                        "command": ["bash", "-c", "run $INDEX"],
                        "env": [{"name": "INDEX", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                        "resources": {"limits": {"cpu": "2", "memory": "60Gi"}},
                    }
                ],
            },
        },
    },
    "status": {"active": 3},
}


def sweep_spec(i: int, memory: int = 10 * 2**30) -> JobSpec:
    return JobSpec(
        name=f"wetlands-index-{i}",
        command=["ignored"],
        env={"INDEX": str(i)},
        memory_bytes=memory,
        cpu=1,
        labels={"wetlands/index": str(i), "wetlands/batch": "tier0-chunk-00000"},
        annotations={"wetlands/orchestrator-timestamp": "t"},
        template=TEMPLATE,
    )


def test_per_index_manifest_follows_the_seed() -> None:
    job = job_manifest(sweep_spec(7), labels={"sluice/chunk": "c"})
    meta, spec = job["metadata"], job["spec"]
    assert meta["name"] == "wetlands-index-7" and "uid" not in meta and "status" not in job
    assert meta["labels"] == {
        "app": "w",
        "wetlands/index": "7",
        "wetlands/batch": "tier0-chunk-00000",
        "sluice/chunk": "c",
    }
    assert spec["template"]["metadata"]["labels"]["wetlands/index"] == "7"
    assert "job-name" not in spec["template"]["metadata"]["labels"]
    assert meta["annotations"] == {"wetlands/orchestrator-timestamp": "t"}
    assert "selector" not in spec and spec["parallelism"] == 1 and spec["completions"] == 1
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] == 3600
    container = spec["template"]["spec"]["containers"][0]
    assert container["command"] == ["bash", "-c", "run $INDEX"]
    assert container["env"] == [{"name": "INDEX", "value": "7"}]
    assert container["resources"] == {
        "limits": {"cpu": "1", "memory": "10Gi"},
        "requests": {"cpu": "1", "memory": "10Gi"},
    }
    assert TEMPLATE["metadata"]["uid"] == "u-1", "the template is not modified"


def test_indexed_grouping_and_manifest() -> None:
    specs = [sweep_spec(i) for i in (3, 1, 8)] + [sweep_spec(5, memory=20 * 2**30)]
    groups = group(specs)
    assert [[s.name for s in g] for g in groups] == [
        ["wetlands-index-3", "wetlands-index-1", "wetlands-index-8"],
        ["wetlands-index-5"],
    ]
    name = indexed_name(groups[0])
    assert name.startswith("wetlands-index-") and len(name) <= 52
    job = indexed_manifest(name, groups[0], parallelism=50)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 3
    assert spec["parallelism"] == 3 and spec["backoffLimitPerIndex"] == 0
    assert "backoffLimit" not in spec
    assert spec["podFailurePolicy"]["rules"][0]["action"] == "FailIndex"
    assert job["metadata"]["labels"] == {"app": "w", "wetlands/batch": "tier0-chunk-00000"}
    assert job["metadata"]["annotations"]["sluice/items"] == (
        '["wetlands-index-3","wetlands-index-1","wetlands-index-8"]'
    )
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["INDEX_MAPPING"]["value"] == "3\n1\n8" and "INDEX" not in env
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert container["command"][3:] == ["sluice-index", "bash", "-c", "run $INDEX"]


def test_manifests_keep_only_the_templates_own_metadata() -> None:
    last_applied = "kubectl.kubernetes.io/last-applied-configuration"

    def member(i: int, team: str) -> JobSpec:
        template = {
            **TEMPLATE,
            "metadata": {
                **TEMPLATE["metadata"],
                "labels": {**TEMPLATE["metadata"]["labels"], "team": team},
                "annotations": {last_applied: "{}", "owner": "ops", "shift": team},
            },
        }
        return sweep_spec(i).model_copy(update={"template": template})

    job = job_manifest(member(1, "a"))
    assert job["metadata"]["annotations"] == {
        "owner": "ops",
        "shift": "a",
        "wetlands/orchestrator-timestamp": "t",
    }
    assert job["metadata"]["labels"]["team"] == "a" and "controller-uid" not in job["metadata"]
    (members,) = group([member(1, "a"), member(2, "a"), member(3, "b")])
    meta = indexed_manifest("wetlands", members)["metadata"]
    assert meta["labels"] == {"app": "w", "wetlands/batch": "tier0-chunk-00000"}
    assert meta["annotations"] == {
        "owner": "ops",
        "wetlands/orchestrator-timestamp": "t",
        "sluice/items": '["wetlands-index-1","wetlands-index-2","wetlands-index-3"]',
    }


def test_indexed_prelude_exports_the_mapped_value(tmp_path) -> None:
    import os
    import subprocess

    job = indexed_manifest("g", [sweep_spec(i) for i in (40, 7, 12)])
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"] if "value" in e}
    argv = container["command"][:4] + ["sh", "-c", 'echo "$INDEX"']
    for position, expected in enumerate(("40", "7", "12")):
        done = subprocess.run(
            argv,
            env={**os.environ, **env, "JOB_COMPLETION_INDEX": str(position)},
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout == f"{expected}\n"


def test_indexed_rejects_multiline_values() -> None:
    specs = [
        JobSpec(name="a", command=["x"], env={"ARG": "1\n2"}),
        JobSpec(name="b", command=["x"], env={"ARG": "3"}),
    ]
    with pytest.raises(SluiceInputError, match="ARG"):
        indexed_manifest("g", specs)


def retry_state(exc: BaseException) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.set_exception((type(exc), exc, None))
    return state


def test_429_waits_as_long_as_retry_after_says() -> None:
    exc = ApiException(status=429, reason="Too Many Requests")
    exc.headers = {"Retry-After": "3"}
    assert is_retryable(exc) and backoff_wait(retry_state(exc)) == 3.0
    plain = ApiException(status=503, reason="Unavailable")
    assert is_retryable(plain) and 0 <= backoff_wait(retry_state(plain)) <= 5
    assert not is_retryable(ApiException(status=409, reason="Conflict"))
    assert not is_retryable(ApiException(status=403, reason="Forbidden"))
