"""Indexed mode on the wetlands sweep: API objects and requests per tier.

The 18,587 indexes run in chunks of 400 against the API double (own process,
kubelet ``instant``). Pods "run out of memory" (exit 137, ``OOMKilled``) at tier 0
for every 10th index and at tier 1 for every 100th; each tier reruns only the
OOM-killed indexes of the tier before, regrouped into new Indexed Jobs at twice
the memory. Every chunk is submitted and then waited on (one list+watch).

    python benchmarks/k8s_indexed.py [--indexes 18587] [--chunk 400]
"""

from __future__ import annotations

import argparse
import math
import time

from k8s_support import SWEEP_SIZE, chunked, double_process, sweep_specs

from sluice.jobs import Outcome
from sluice.quantity import parse_memory

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
TIER0 = 10 * 2**30


def oom_by_tier(pod: dict) -> tuple[int, str] | None:
    """Instant-kubelet outcome: OOM for index % 10 == 0 at tier 0, % 100 == 0 at tier 1."""
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    position = int(pod["metadata"]["annotations"][INDEX_KEY])
    index = int(env["INDEX_MAPPING"].split("\n")[position])
    tier = round(math.log2(parse_memory(container["resources"]["limits"]["memory"]) / TIER0))
    if (tier == 0 and index % 10 == 0) or (tier == 1 and index % 100 == 0):
        return 137, "OOMKilled"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indexes", type=int, default=SWEEP_SIZE)
    parser.add_argument("--chunk", type=int, default=400)
    args = parser.parse_args()
    print(f"indexed mode, {args.indexes} indexes, chunks of {args.chunk}, API double")
    print(
        f"{'tier':>4} {'indexes':>8} {'chunks':>6} {'Jobs':>5} {'requests':>8} "
        f"{'creates':>7} {'lists':>5} {'watches':>7} {'pod lists':>9} {'log reads':>9} "
        f"{'per index':>9} "
        f"{'oom':>5} {'s':>6}"
    )
    with double_process(kubelet="instant", outcome=oom_by_tier, capacity=64) as double:
        backend = double.backend(mode="indexed")
        backend.preflight()
        pending = list(range(args.indexes))
        tier = 0
        while pending:
            double.ask("clear")
            jobs_before = double.ask("jobs")
            started = time.perf_counter()
            oom: list[int] = []
            chunks = list(chunked(pending, args.chunk))
            for number, part in enumerate(chunks):
                specs = sweep_specs(part, tier=tier, chunk=f"tier{tier}-chunk-{number:05d}")
                backend.submit(specs)
                for result in backend.wait([s.name for s in specs], timeout=600):
                    if result.outcome is Outcome.OOM:
                        oom.append(int(result.name.rsplit("-", 1)[1]))
                    elif result.outcome is not Outcome.SUCCEEDED:
                        raise SystemExit(f"unexpected {result}")
            seconds = time.perf_counter() - started
            counts = double.requests()
            total = sum(counts.values())

            def count(method, kind, watch=None, counts=counts) -> int:
                return sum(
                    n
                    for (m, k, w), n in counts.items()
                    if m == method and k == kind and watch in (None, w)
                )

            print(
                f"{tier:>4} {len(pending):>8} {len(chunks):>6} "
                f"{double.ask('jobs') - jobs_before:>5} {total:>8} {count('POST', 'jobs'):>7} "
                f"{count('GET', 'jobs', False):>5} {count('GET', 'jobs', True):>7} "
                f"{count('GET', 'pods'):>9} {count('GET', 'pods/{name}/log'):>9} "
                f"{total / len(pending):>9.3f} {len(oom):>5} "
                f"{seconds:>6.1f}"
            )
            pending, tier = sorted(oom), tier + 1
        backend.close()


if __name__ == "__main__":
    main()
