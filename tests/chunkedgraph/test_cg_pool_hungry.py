"""The JobPool says once when it runs dry, so the ingest can start another batch (issue 12.6).

With sub-tree batches, every batch in flight ends with a few parents one layer at a time;
when all of them are in that tail the pool has free slots and nothing pending. The pool
calls ``on_hungry`` once per such episode (again only after new jobs came).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend
from sluice.chunkedgraph.pool import JobPool
from sluice.jobs import JobSpec, Outcome
from tests.k8s_double import K8sDouble, start_double


@pytest.fixture
def held(tmp_path: Path) -> Iterator[K8sDouble]:
    double = start_double(work_dir=tmp_path / "k8s", kubelet="hold")
    try:
        yield double
    finally:
        double.close()


def _finish(double: K8sDouble, name: str) -> None:
    (pod,) = double.wait_for(
        lambda: [
            p for p in double.pods_of(name) if (p.get("status") or {}).get("phase") == "Running"
        ]
    )
    double.finish_pod(pod["metadata"]["name"], 0)


def test_the_pool_calls_on_hungry_once_each_time_it_runs_dry(held) -> None:
    backend = KubernetesBackend(
        "biodiversity", access=ClusterAccess(kubeconfig=str(held.kubeconfig))
    )
    pool = JobPool(backend, parallelism=4, refill=1)
    signals: list[bool] = []
    signalled = threading.Condition()

    def on_hungry() -> None:
        with signalled:
            signals.append(pool.hungry)
            signalled.notify_all()

    pool.on_hungry = on_hungry
    first = [pool.submit(JobSpec(name=f"a{i}", command=["true"])) for i in range(2)]
    for i in range(2):
        _finish(held, f"a{i}")
    assert [f.result(timeout=60).outcome for f in first] == [Outcome.SUCCEEDED] * 2
    with signalled:
        assert signalled.wait_for(lambda: signals, timeout=60)
    assert signals == [True], "one call for the whole dry spell, not one per ended job"

    again = pool.submit(JobSpec(name="b0", command=["true"]))
    _finish(held, "b0")
    assert again.result(timeout=60).outcome is Outcome.SUCCEEDED
    with signalled:
        assert signalled.wait_for(lambda: len(signals) == 2, timeout=60)
    assert signals == [True, True]
    pool.close()
    assert not pool.hungry
