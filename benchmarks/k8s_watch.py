"""API requests made while waiting on 2,000 running Jobs: watch, not poll.

2,000 per-index Jobs in 5 chunks of 400 are created against the API double
(own process, kubelet ``hold``: pods never end), then each chunk is waited on
by its own thread (as the sweep's concurrent chunk tasks do) for ``--window``
seconds. Requests are counted by the double during the window.

For comparison, prefect-kubernetes 0.8.0's ``KubernetesJobRun.wait_for_completion``
reads the Job and lists its pods every ``interval_seconds`` (default 5) per Job:
2 x jobs x window / 5 requests (computed from its source, not run here).

    python benchmarks/k8s_watch.py [--jobs 2000] [--chunk 400] [--window 10]
"""

from __future__ import annotations

import argparse
import threading
import time

from k8s_support import chunked, double_process, sweep_specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--chunk", type=int, default=400)
    parser.add_argument("--window", type=float, default=10.0, help="seconds to wait (60 = issue)")
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
    print(f"  prefect-kubernetes KubernetesJob polling, same window (computed): {polling:,.0f}")
    print(f"  results reported: {sum(outcomes)} (all timeout)")


if __name__ == "__main__":
    main()
