"""ChunkedGraph ``--command`` work on the Kubernetes double: pods in flight and API requests.

10,000 layer-2 chunks (25 x 20 x 20; 11,433 chunks over all layers) through the real flow
(``chunkedgraph_ingest``, ``work.backend = kubernetes``, per-index Jobs) with
``--parallelism 500``, on its own private Prefect server and an in-process Kubernetes double
whose kubelet holds every pod Running until this script ends it ``--job-seconds`` after it
started (a fixed job duration; the "cluster" has room for every pod).

Printed: pods Running at once (peak; steady state = the samples from the first one with
the pool full until fewer than ``parallelism`` layer-2 Jobs were left to create, i.e. while
the pool could be full; the ramp-up before it is printed apart), the share of those
samples at >= 90% of the parallelism, and every API request the
double served by (method, kind, watch) — creates are one per Job (per-index mode); status
comes from one list + one watch per wave, not from per-job polls. The anchor printed beside
it is the seed's way to follow 11,433 jobs: one poll (GET) per job per poll round.

    python benchmarks/chunkedgraph_k8s.py [--bounds 25 20 20] [--parallelism 500]
        [--job-seconds 20] [--batch-size 4096]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.chunkedgraph_1m import prefect_api, write_dataset  # noqa: E402


class Cluster:
    """Ends each Running pod ``seconds`` after it started; samples how many are Running."""

    def __init__(self, double, seconds: float, tick: float = 0.5) -> None:
        self.double, self.seconds, self.tick = double, seconds, tick
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Cluster:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        store, namespace = self.double.store, self.double.namespace
        while not self._stop.wait(self.tick):  # the cluster's own clock, not synchronisation
            now = datetime.now(UTC)
            running = store.list(
                "pods", namespace, lambda p: (p.get("status") or {}).get("phase") == "Running"
            )[0]
            self.samples.append((time.monotonic(), len(running)))
            for pod in running:
                started = datetime.fromisoformat(pod["status"]["startTime"].replace("Z", "+00:00"))
                if (now - started).total_seconds() >= self.seconds:
                    self.double.finish_pod(pod["metadata"]["name"], 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bounds", type=int, nargs=3, default=[25, 20, 20])
    parser.add_argument("--parallelism", type=int, default=500)
    parser.add_argument("--job-seconds", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=4096)
    args = parser.parse_args()

    from tests.k8s_double import start_double

    home = Path(tempfile.mkdtemp(prefix="cg-k8s-bench-"))
    double = start_double(work_dir=home / "k8s", kubelet="hold")
    os.environ["KUBECONFIG"] = str(double.kubeconfig)  # the flow's backend finds the double
    try:
        with prefect_api(home):
            run(args, home, double)
    finally:
        double.close()


def run(args: argparse.Namespace, home: Path, double) -> None:
    from sluice.flows.chunkedgraph import run_ingest

    from sluice.chunkedgraph.chunks import ChunkGrid
    from sluice.chunkedgraph.work import ChunkWork, WorkKind

    bounds = tuple(args.bounds)
    grid = ChunkGrid(bounds)
    total = sum(grid.count(layer) for layer in grid.layers)
    dataset = write_dataset(home / "dataset", bounds)
    work = ChunkWork(kind=WorkKind.COMMAND, command=["true"], backend="kubernetes")
    double.requests.clear()
    started = time.monotonic()
    with Cluster(double, args.job_seconds) as cluster:
        summary = run_ingest(
            "benchk8s",
            str(dataset),
            work=work,
            parallelism=args.parallelism,
            batch_size=args.batch_size,
        )
    wall = time.monotonic() - started
    requests = double.requests.snapshot()

    counts = [n for _, n in cluster.samples]
    leaves = grid.count(2)
    steady = _steady(cluster.samples, double, args.parallelism)

    print(
        f"layer-2 chunks          : {leaves:,} {bounds}, "
        f"{total:,} chunks in {grid.layer_count} layers"
    )
    print(f"all layers done         : {all(d == c for d, c in summary.values())}")
    print(f"parallelism             : {args.parallelism}, job duration {args.job_seconds} s")
    print(f"wall time (flow call)   : {wall:.1f} s")
    print(f"pods Running, peak      : {max(counts, default=0)}")
    filled = next((at for at, n in cluster.samples if n >= args.parallelism), None)
    if filled is not None:
        print(f"ramp-up to a full pool  : {filled - started:.1f} s after the flow call")
    if steady:
        share = sum(n >= 0.9 * args.parallelism for n in steady) / len(steady)
        print(
            f"pods Running, steady    : median {statistics.median(steady):.0f} "
            f"(min {min(steady)}, {len(steady)} samples; {share:.0%} of them >= "
            f"{int(0.9 * args.parallelism)})"
        )
    print("API requests by (method, kind, watch):")
    for (method, kind, watch), n in sorted(requests.items(), key=lambda kv: -kv[1]):
        print(f"  {method:6} {kind:28} watch={watch!s:5} {n:,}")
    creates = sum(n for (m, k, _), n in requests.items() if m == "POST" and k == "jobs")
    status = sum(n for (m, k, _), n in requests.items() if m == "GET")
    print(f"Job creates             : {creates:,} (one per chunk Job, per-index mode)")
    print(f"status requests (GET)   : {status:,} for {total:,} jobs ({status / total:.3f} per job)")
    print(f"anchor: one GET per job per poll round: {total:,} requests per round")


def _layer2_created(double) -> list[datetime]:
    """Creation times of the layer-2 chunk Jobs (``cg-benchk8s-2-x-y-z``), sorted."""
    return sorted(
        datetime.fromisoformat(j["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        for j in double.jobs()
        if j["metadata"]["name"].split("-")[2] == "2"
    )


def _steady(samples, double, parallelism: int) -> list[int]:
    """Steady state: the samples from the first one with the pool full (``parallelism``
    pods Running) until fewer than ``parallelism`` layer-2 Jobs were left to create."""
    created = _layer2_created(double)
    if len(created) <= parallelism:
        return []
    cutoff = created[len(created) - parallelism]  # after this, fewer than P leaves remained
    wall_now, mono_now = datetime.now(UTC), time.monotonic()
    filled = next((at for at, n in samples if n >= parallelism), None)
    if filled is None:
        return []
    return [
        n
        for at, n in samples
        if at >= filled and wall_now.timestamp() - (mono_now - at) < cutoff.timestamp()
    ]


if __name__ == "__main__":
    main()
