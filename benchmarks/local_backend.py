"""Local backend overhead: N no-op jobs (``true``) through one LocalBackend.

Prints wall time, the orchestrator's own CPU per job (its threads: queueing,
spawning, cgroup mkdir/rmdir, reaping), CPU of the job processes per job
(wrapper + ``true``), and the orchestrator's peak RSS.

    python benchmarks/local_backend.py --jobs 18587 --parallelism 2 8
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from sluice.backends.local import LocalBackend
from sluice.jobs import JobSpec, Outcome


def run(jobs: int, parallelism: int, cgroups: bool | None) -> dict[str, float | str]:
    specs = [
        JobSpec(name=f"noop-{i}", command=["true"], memory_bytes=64 << 20) for i in range(jobs)
    ]
    with tempfile.TemporaryDirectory() as logs:
        backend = LocalBackend(parallelism=parallelism, log_dir=Path(logs), cgroups=cgroups)
        mode = backend.memory_limits
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        backend.submit(specs)
        outcomes = [r.outcome for r in backend.wait([s.name for s in specs])]
        wall = time.perf_counter() - start
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        backend.close()
    assert outcomes.count(Outcome.SUCCEEDED) == jobs, "some no-op jobs did not succeed"

    def cpu(after: resource.struct_rusage, before: resource.struct_rusage) -> float:
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    return {
        "limits": mode,
        "wall_s": wall,
        "wall_ms_per_job": wall / jobs * 1e3,
        "orchestrator_cpu_ms_per_job": cpu(self_after, self_before) / jobs * 1e3,
        "job_cpu_ms_per_job": cpu(children_after, children_before) / jobs * 1e3,
        "peak_rss_mb": self_after.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=18587)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--rlimit", action="store_true", help="force the RLIMIT_AS fallback")
    args = parser.parse_args()
    for parallelism in args.parallelism:
        figures = run(args.jobs, parallelism, False if args.rlimit else None)
        shown = "  ".join(
            f"{key}={value:.2f}" if isinstance(value, float) else f"{key}={value}"
            for key, value in figures.items()
        )
        print(f"jobs={args.jobs} parallelism={parallelism}  {shown}", flush=True)


if __name__ == "__main__":
    main()
