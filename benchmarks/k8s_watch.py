"""API requests made while waiting on 2,000 running Jobs: watch, not poll.

2,000 per-index Jobs in 5 chunks of 400 are created against the API double
(own process, kubelet ``hold``: pods never end), then each chunk is waited on
by its own thread (as the sweep's concurrent chunk tasks do) for ``--window``
seconds. Requests are counted by the double during the window.

For comparison, prefect-kubernetes 0.8.0's ``KubernetesJobRun.wait_for_completion``
reads the Job and lists its pods every ``interval_seconds`` (default 5) per Job.
It is measured on a sample of ``--sample`` Jobs (its own double, same window) and
extrapolated to ``--jobs``; the formula from its source, 2 x jobs x window / 5, is
printed too.

    python benchmarks/k8s_watch.py [--jobs 2000] [--chunk 400] [--window 10] [--sample 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import time
from pathlib import Path

import yaml
from k8s_support import NAMESPACE, chunked, double_process, sweep_specs

from sluice.backends.kubernetes.manifests import job_manifest


def prefect_kubernetes_polls(jobs: int, window: float) -> int:
    """Requests prefect-kubernetes' KubernetesJobRun makes waiting on ``jobs`` Jobs."""
    from prefect_kubernetes.credentials import KubernetesClusterConfig, KubernetesCredentials
    from prefect_kubernetes.jobs import KubernetesJob

    async def measure(double) -> int:
        config = yaml.safe_load(Path(double.kubeconfig).read_text())
        credentials = KubernetesCredentials(
            cluster_config=KubernetesClusterConfig(config=config, context_name="double")
        )
        runs = [
            await KubernetesJob(
                v1_job=job_manifest(spec), credentials=credentials, namespace=NAMESPACE
            ).atrigger()
            for spec in sweep_specs(range(jobs))
        ]
        double.ask("clear")
        with contextlib.suppress(TimeoutError):  # they never finish: stop at the window
            await asyncio.wait_for(
                asyncio.gather(*(run.await_for_completion() for run in runs)), window
            )
        return sum(double.requests().values())

    with double_process(kubelet="hold", capacity=jobs) as double:
        return asyncio.run(measure(double))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=400)
    parser.add_argument("--window", type=float, default=10.0, help="seconds to wait (60 = issue)")
    parser.add_argument("--sample", type=int, default=50, help="prefect-kubernetes sample size")
    args = parser.parse_args()
    with double_process(kubelet="hold", capacity=args.jobs) as double:
        backend = double.backend()
        backend.preflight()
        chunks = list(chunked(sweep_specs(range(args.jobs)), args.chunk))
        for part in chunks:
            backend.submit(part)
        double.ask("clear")
        outcomes: list[int] = []

        def wait(part) -> None:
            outcomes.append(
                sum(1 for _ in backend.wait([s.name for s in part], timeout=args.window))
            )

        started = time.perf_counter()
        threads = [threading.Thread(target=wait, args=(part,)) for part in chunks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        counts = double.requests()

    def count(method=None, kind=None, watch=None) -> int:
        return sum(
            n
            for (m, k, w), n in counts.items()
            if method in (None, m) and kind in (None, k) and watch in (None, w)
        )

    watches = count("GET", "jobs", True)
    lists = count("GET", "jobs", False)
    per_job = count("GET", "jobs/{name}") + count("GET", "jobs/{name}/status")
    pods = count("GET", "pods")
    deletes = count("DELETE", "jobs/{name}")
    polling = 2 * args.jobs * args.window / 5
    sampled = prefect_kubernetes_polls(args.sample, args.window) if args.sample else 0
    print(
        f"waiting on {args.jobs} running Jobs in {len(chunks)} chunks for {args.window:g} s"
        f" (measured {elapsed:.1f} s)"
    )
    print(f"  watch requests (GET jobs?watch=1):     {watches}")
    print(f"  list requests (GET jobs):               {lists}")
    print(f"  per-Job polls (GET jobs/NAME[/status]): {per_job}")
    print(f"  pod lists:                              {pods}")
    print(f"  Sluice total while waiting:             {watches + lists + per_job + pods}")
    print(f"  then, at the timeout, deletes:          {deletes} (wait deletes what timed out)")
    if args.sample:
        print(
            f"  prefect-kubernetes KubernetesJobRun, same window: {sampled} requests for"
            f" {args.sample} Jobs (measured) = {sampled * args.jobs / args.sample:,.0f} for"
            f" {args.jobs} (extrapolated); its source says {polling:,.0f}"
        )
    print(f"  results reported: {sum(outcomes)} (all timeout)")


if __name__ == "__main__":
    main()
