"""Command work through the shared JobPool on the Kubernetes double (pods held until ended).

Cluster-wide parallelism (issue 12.6): every batch's ready chunks go to one pool that keeps
exactly ``parallelism`` jobs in flight across batches, and a parent's job is created only
after its last child's pod succeeded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend
from sluice.chunkedgraph.batch import BatchOutcome, run_batch_jobs
from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.pool import JobPool
from sluice.chunkedgraph.schedule import Scheduler
from sluice.chunkedgraph.tracker import TableState
from sluice.chunkedgraph.work import ChunkWork, WorkKind, chunk_job, job_name
from tests.k8s_double import start_double

GRID = ChunkGrid((4, 4, 4))
WORK = ChunkWork(kind=WorkKind.COMMAND, command=["true", "{layer}"], backend="kubernetes")


@pytest.fixture
def held(tmp_path: Path) -> Iterator:
    double = start_double(work_dir=tmp_path / "k8s", kubelet="hold")
    try:
        yield double
    finally:
        double.close()


def running(double) -> list[dict]:
    return [p for p in double.pods() if (p.get("status") or {}).get("phase") == "Running"]


def test_pool_holds_parallelism_across_batches_and_parents_wait_for_children(held, tmp_path):
    backend = KubernetesBackend(
        "biodiversity", access=ClusterAccess(kubeconfig=str(held.kubeconfig))
    )
    pool = JobPool(backend, parallelism=10, refill=1)
    state = TableState(tmp_path / "table", GRID)
    scheduler = Scheduler(state, batch_size=8)  # sub-trees of 8 layer-2 chunks + their parent
    batches = [scheduler.next_batch() for _ in range(8)]
    outcomes: list[BatchOutcome] = []
    job_of = partial(chunk_job, WORK, "t", env={})
    threads = [
        threading.Thread(target=lambda b=b: outcomes.append(run_batch_jobs(b, GRID, pool, job_of)))
        for b in batches
    ]
    for thread in threads:
        thread.start()
    held.wait_for(lambda: len(running(held)) == 10)  # the first wave fills the pool at once
    ended: set[str] = set()
    total = 64 + 8
    while len(ended) < total:
        # near the end parents wait for their children, so the pool may hold fewer than 10
        held.wait_for(lambda: running(held))
        pods = running(held)
        assert len(pods) <= 10
        for pod in pods:
            job = pod["metadata"]["labels"]["job-name"]
            layer, x, y, z = map(int, job.split("-")[2:])
            if layer == 3:
                children = GRID.children(3, (x, y, z))
                assert {job_name("t", 2, c) for c in children} <= ended
            held.finish_pod(pod["metadata"]["name"], 0)
            ended.add(job)
    for thread in threads:
        thread.join(timeout=60)
    pool.close()
    assert sorted(len(o.done.get(2, [])) for o in outcomes) == [8] * 8
    assert all(list(o.done[3]) for o in outcomes)
    assert pool.stats.jobs == total and pool.stats.peak_in_flight == 10


def test_a_failed_job_is_a_failed_chunk_and_its_parent_never_runs(held, tmp_path):
    backend = KubernetesBackend(
        "biodiversity", access=ClusterAccess(kubeconfig=str(held.kubeconfig))
    )
    pool = JobPool(backend, parallelism=4)
    state = TableState(tmp_path / "table", GRID)
    batch = Scheduler(state, batch_size=8).next_batch()
    result: list[BatchOutcome] = []
    job_of = partial(chunk_job, WORK, "t", env={})
    thread = threading.Thread(
        target=lambda: result.append(run_batch_jobs(batch, GRID, pool, job_of))
    )
    thread.start()
    ended = 0
    failed_name = None
    while ended < 8:
        held.wait_for(lambda: running(held))
        for pod in running(held):
            code = 3 if failed_name is None else 0
            failed_name = failed_name or pod["metadata"]["labels"]["job-name"]
            held.finish_pod(pod["metadata"]["name"], code, log="boom\n" if code else None)
            ended += 1
    thread.join(timeout=60)
    pool.close()
    (outcome,) = result
    assert len(outcome.done[2]) == 7 and 3 not in outcome.done
    ((layer, index, error),) = outcome.failed
    assert job_name("t", layer, GRID.coords(layer, index)) == failed_name
    assert error.startswith("exit:3")
