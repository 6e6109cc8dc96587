"""Local backend spawn cost against real floor programs, measured in the same run.

N no-op jobs (``true``, 64 MiB memory limit) at each parallelism, by:

- a C floor: vfork + exec, a fresh memory cgroup and a log file per job (compiled here
  with gcc; skipped without it);
- a Python floor: ``parallelism`` threads, each job a fresh memory cgroup, a log file
  and ``Popen`` through ``sh`` that enters the cgroup and execs the command;
- Sluice's ``LocalBackend`` (its guarantees on top: OOM classification, peak memory,
  a durable ending per job, no orphans).

Rounds rotate the three so they share the machine's load; medians are printed, with
the backend's ratio to each floor, the orchestrator's CPU per job, the CPU of the
supervisor and jobs per job, and the orchestrator's peak RSS.

    python benchmarks/local_backend.py --jobs 18587 --parallelism 2 8 --rounds 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import c_floor, popen_floor  # noqa: E402
from sluice.backends.local import LocalBackend  # noqa: E402
from sluice.jobs import JobSpec, Outcome  # noqa: E402

MEMORY = 64 << 20


def cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def sluice_backend(jobs: int, parallelism: int, work: Path, cgroups: bool | None) -> dict:
    specs = [JobSpec(name=f"noop-{i}", command=["true"], memory_bytes=MEMORY) for i in range(jobs)]
    backend = LocalBackend(parallelism=parallelism, log_dir=work / "sluice-logs", cgroups=cgroups)
    self_before = cpu(resource.getrusage(resource.RUSAGE_SELF))
    children_before = cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    began = time.perf_counter()
    backend.submit(specs)
    outcomes = [r.outcome for r in backend.wait([s.name for s in specs])]
    wall = time.perf_counter() - began
    self_cpu = cpu(resource.getrusage(resource.RUSAGE_SELF)) - self_before
    backend.close()  # reaps the supervisor: its CPU and its jobs' join RUSAGE_CHILDREN
    children_cpu = cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - children_before
    assert outcomes.count(Outcome.SUCCEEDED) == jobs, "some no-op jobs did not succeed"
    return {
        "limits": backend.memory_limits,
        "wall": wall,
        "orchestrator_ms": self_cpu / jobs * 1e3,
        "supervisor_and_jobs_ms": children_cpu / jobs * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=18587)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rlimit", action="store_true", help="force the RLIMIT_AS fallback")
    args = parser.parse_args()
    for parallelism in args.parallelism:
        c_walls, popen_walls, runs = [], [], []
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="sluice-local-bench-") as directory:
                work = Path(directory)
                c_walls.append(c_floor(args.jobs, parallelism, work, MEMORY))
                popen_walls.append(popen_floor(args.jobs, parallelism, work, MEMORY))
                runs.append(sluice_backend(args.jobs, parallelism, work, not args.rlimit and None))
        wall = statistics.median(r["wall"] for r in runs)
        popen = statistics.median(popen_walls)
        print(
            f"jobs={args.jobs} parallelism={parallelism} rounds={args.rounds} "
            f"limits={runs[0]['limits']} (medians)"
        )
        measured = [w for w in c_walls if w is not None]
        if len(measured) == len(c_walls):
            c_wall = statistics.median(measured)
            print(
                f"  C vfork+exec floor:    {c_wall:7.2f} s  {c_wall / args.jobs * 1e3:6.3f} ms/job"
            )
        print(f"  Python Popen floor:    {popen:7.2f} s  {popen / args.jobs * 1e3:6.3f} ms/job")
        ratios = f"{wall / popen:.2f}x the Popen floor"
        if len(measured) == len(c_walls):
            ratios += f", {wall / c_wall:.2f}x the C floor"
        print(
            f"  Sluice LocalBackend:   {wall:7.2f} s  {wall / args.jobs * 1e3:6.3f} ms/job  "
            f"= {ratios}"
        )
        print(
            "  Sluice CPU per job: orchestrator "
            f"{statistics.median(r['orchestrator_ms'] for r in runs):.3f} ms, supervisor + jobs "
            f"{statistics.median(r['supervisor_and_jobs_ms'] for r in runs):.3f} ms; "
            f"orchestrator peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
            " MiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
