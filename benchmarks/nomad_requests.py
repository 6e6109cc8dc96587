"""Nomad API requests per job: dispatch, follow and classify N jobs through NomadBackend.

Runs against the Nomad double (in this process; its client runs each job, ``sleep
--sleep``, as a local process, ``--slots`` at a time). The backend follows all jobs with
one blocking query on the jobs list and reads a job's allocations once, when it is
dead: requests per job should stay flat as N grows. ``--min-interval`` is the
backend's batching window between two watch queries (production default 0.5 s; 0 =
wake on every change).

    python benchmarks/nomad_requests.py [--jobs 500] [--slots 32] [--sleep 1] [--min-interval 0.5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sluice.backends.nomad import NomadBackend  # noqa: E402
from sluice.jobs import JobSpec  # noqa: E402
from tests.nomad_double.fixture import NomadApiFixture  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--min-interval", type=float, default=0.5)
    parser.add_argument("--faults", type=float, default=0.0, help="fraction of requests failed")
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds each job runs")
    args = parser.parse_args()
    double = NomadApiFixture(token="bench", slots=args.slots).start()
    backend = NomadBackend(double.settings(retry_attempts=12), min_interval=args.min_interval)
    try:
        backend.preflight(["sluice-job"])
        double.requests.clear()
        double.set_faults(args.faults, seed=1)
        command = ["sleep", str(args.sleep)]
        specs = [JobSpec(name=f"bench-{i}", command=command) for i in range(args.jobs)]
        started = time.monotonic()
        names = backend.submit(specs)
        dispatched = time.monotonic() - started
        outcomes: dict[str, int] = {}
        for result in backend.wait(names):
            outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
        elapsed = time.monotonic() - started
    finally:
        backend.close()
        double.stop()
    total = double.total_requests
    print(
        f"jobs                 {args.jobs} x sleep {args.sleep} s (slots {args.slots}, "
        f"faults {args.faults:.0%}, min interval {args.min_interval} s)"
    )
    print(f"outcomes             {outcomes}")
    print(f"dispatch time        {dispatched:.2f} s ({1000 * dispatched / args.jobs:.1f} ms/job)")
    print(f"total time           {elapsed:.2f} s")
    print(f"requests             {total} ({total / args.jobs:.2f} per job)")
    print(f"faults injected      {double.faults_injected}")
    for route, count in double.requests.most_common():
        print(f"  {route:34} {count:6} ({count / args.jobs:.2f} per job)")


if __name__ == "__main__":
    main()
