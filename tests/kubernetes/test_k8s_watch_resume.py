"""A wait survives what a real API server does to watches: dropped connections, 410 mid-stream.

The double breaks the watch stream on purpose after a chosen number of events; the
backend must still report every Job end exactly once, resuming from the last
resourceVersion it received (a reset) or relisting (a 410).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend
from sluice.jobs import JobSpec, Outcome
from tests.k8s_double import K8sDouble

NAMES = ["a", "b", "c"]


@pytest.fixture
def backend(k8s_api: K8sDouble) -> Iterator[KubernetesBackend]:
    k8s_api.set_kubelet("hold")
    made = KubernetesBackend(
        k8s_api.namespace, access=ClusterAccess(kubeconfig=str(k8s_api.kubeconfig))
    )
    yield made
    made.close()


def _running(k8s_api: K8sDouble, names: list[str]) -> list[str]:
    """The pods of ``names``, once every one of them is Running."""

    def pods() -> list[str] | None:
        found = [p for n in names for p in k8s_api.pods_of(n)]
        if len(found) < len(names) or any(p["status"].get("phase") != "Running" for p in found):
            return None
        return [p["metadata"]["name"] for p in found]

    return k8s_api.wait_for(pods)


def _finish_once_watched(k8s_api: K8sDouble, pods: list[str]) -> threading.Thread:
    """End ``pods`` one by one as soon as the backend's watch is open."""

    def finish() -> None:
        k8s_api.wait_for_watches(1)
        for pod in pods:
            k8s_api.finish_pod(pod, 0)

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    return thread


def _wait_all(k8s_api: K8sDouble, backend: KubernetesBackend) -> dict[str, Outcome]:
    backend.submit([JobSpec(name=n, command=["true"]) for n in NAMES])
    k8s_api.requests.clear()  # count only the wait's requests
    finisher = _finish_once_watched(k8s_api, _running(k8s_api, NAMES))
    results = [(r.name, r.outcome) for r in backend.wait(NAMES, timeout=120)]
    finisher.join()
    assert len(results) == len(NAMES), f"one result per Job: {results}"
    return dict(results)


@pytest.mark.parametrize("after", [0, 1, 2])
def test_a_dropped_watch_connection_loses_no_job_end(k8s_api, backend, after) -> None:
    k8s_api.break_next_watch(after_events=after, how="reset")
    outcomes = _wait_all(k8s_api, backend)

    assert outcomes == dict.fromkeys(NAMES, Outcome.SUCCEEDED)
    assert k8s_api.requests.count("GET", "jobs", watch=True) == 2, "resumed once"
    assert k8s_api.requests.count("GET", "jobs", watch=False) == 1, "from its version: no relist"


@pytest.mark.parametrize("after", [0, 1, 2])
def test_410_gone_in_the_middle_of_a_watch_relists(k8s_api, backend, after) -> None:
    k8s_api.break_next_watch(after_events=after, how="gone")
    outcomes = _wait_all(k8s_api, backend)

    assert outcomes == dict.fromkeys(NAMES, Outcome.SUCCEEDED)
    assert k8s_api.requests.count("GET", "jobs", watch=False) == 2, "relisted after the 410"


def test_a_finished_wait_leaves_no_watch_open_on_the_server(k8s_api, backend) -> None:
    k8s_api.bookmark_interval = 3600  # nothing to write: only the hang-up can end the stream
    assert _wait_all(k8s_api, backend) == dict.fromkeys(NAMES, Outcome.SUCCEEDED)
    k8s_api.wait_for_watches(0, timeout=30)


def test_the_double_ends_a_watch_whose_client_hung_up(k8s_api) -> None:
    k8s_api.bookmark_interval = 3600
    api = config.new_client_from_config(str(k8s_api.kubeconfig))
    response = client.BatchV1Api(api).list_namespaced_job(
        k8s_api.namespace, watch=True, timeout_seconds=600, _preload_content=False
    )
    k8s_api.wait_for_watches(1)
    response.close()  # the client hangs up without reading to the end
    k8s_api.wait_for_watches(0, timeout=30)
    api.close()
