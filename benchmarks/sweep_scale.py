"""No-op indexes (18,587 by default) through the whole sweep flow on the local backend,
against floors and plain Prefect, all measured in the same run.

On a private embedded Prefect server: the dry-run print (in a child process, so its
memory is not counted in the flow's peak RSS; its JSON is counted, not kept), the full
sweep flow, and the spawn floors over the same parallelism (a Python
``Popen``-into-cgroup runner before and after the flow and, with gcc, a C vfork+exec
runner; see ``benchmarks/common.py``). ``--prefect-map N`` adds the anchor of plain
Prefect: a flow that ``.map``s a task running the same no-op over N items (in its own
process, after the sweep). Prints the flow's wall time and its ratio to each floor, the
CPU the flow process, the supervisor with its jobs, and the Prefect server spent, the
flow process's peak RSS, and the task runs the server holds for the flow run (counted
there) against those the flow created.

Targets (issue 16): at 18,587 the flow at most 1.5x the Popen floor; at 1,000,000
(``--count 1000000``) the flow completes with a peak RSS under 1 GB and hundreds to low
thousands of task runs, all recorded.

    python benchmarks/sweep_scale.py [--count 18587] [--chunk-size 400] [--parallelism 2]
        [--floor-count N] [--prefect-map 100000] [--no-floors] [--no-dry-run] [--progress]
    python benchmarks/sweep_scale.py --reports-only --count 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    c_floor,
    embedded_server,
    peak_rss_mib,
    popen_floor,
    task_runs_recorded,
)

NOOP_JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "noop"},
    "spec": {
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "noop", "image": "busybox", "command": ["true"]}],
            }
        }
    },
}


def sweep_options(template: Path, count: int, chunk_size: int) -> dict:
    return dict(
        template_path=str(template),
        source_job=None,
        namespace="bench",
        start=0,
        count=count,
        indexes=None,
        index_file=None,
        limit=None,
        job_name_prefix="noop",
        batch_label=None,
        batch_label_template="tier{tier}-chunk-{start:05d}",
        chunk_size=chunk_size,
        wait_timeout="2h",
        tier=0,
        schedule_start_gi=0.0625,
        schedule_factor=2.0,
        max_tier=2,
        memory=None,
        cpu=None,
        backoff_limit=0,
        ttl=3600,
        replace=False,
    )


class _Counted:
    """A text sink that only counts what is written to it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, text: str) -> int:
        self.size += len(text)
        return len(text)

    def flush(self) -> None:
        pass


def dry_run_print(template: Path, count: int, chunk_size: int) -> None:
    """In a child process: time the dry-run print and report it as one JSON line."""
    import contextlib

    from sluice.flows.sweep import print_manifests

    from sluice.sweep.config import resolve_config

    began = time.perf_counter()
    config, start_tier, _ = resolve_config(sweep_options(template, count, chunk_size))
    with contextlib.redirect_stdout(_Counted()) as printed:
        print_manifests(config, start_tier)
    seconds = time.perf_counter() - began
    result = {"seconds": seconds, "mib": printed.size / 2**20, "rss": peak_rss_mib()}
    print(json.dumps(result), file=sys.__stdout__)


def prefect_map(count: int, parallelism: int) -> None:
    """In a child process: plain Prefect, one task run per item, each running the no-op
    in a process; report wall, peak RSS, task runs created and recorded as one JSON line."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(cache_policy=NO_CACHE)
    def noop(index: int) -> int:
        subprocess.run(["true"], check=True)
        return index

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=parallelism))  # type: ignore[arg-type]
    def plain_map(count: int) -> int:
        return len(noop.map(range(count)).result())

    began = time.perf_counter()
    state = plain_map(count, return_state=True)
    wall = time.perf_counter() - began
    rss = peak_rss_mib()
    done = state.result()
    recorded = task_runs_recorded(state.state_details.flow_run_id, count)
    result = {"wall": wall, "rss": rss, "done": done, "recorded": recorded}
    print(json.dumps(result), file=sys.__stdout__)


def reports_only(template: Path, count: int, chunk_size: int, work: Path) -> None:
    """The report step alone over ``count`` recorded indexes (no jobs run): a ledger is
    filled with one succeeded attempt per index, and one OOM before it for every tenth,
    then the sweep's report files and page are written from it; time and peak RSS."""
    from datetime import UTC, datetime

    from sluice.jobs import JobResult, Outcome
    from sluice.ledger import open_ledger
    from sluice.ledger.base import PlannedAttempt
    from sluice.sweep.config import resolve_config
    from sluice.sweep.execution import SweepExecution
    from sluice.sweep.pictures import write_sweep_reports
    from sluice.sweep.plan import TierPolicy

    config, start_tier, _ = resolve_config(sweep_options(template, count, chunk_size))
    ledger = open_ledger(f"sqlite:///{work / 'ledger.db'}")
    now = datetime.now(UTC)
    for chunk in config.chunks:
        for tier, outcome, indexes in (
            (0, Outcome.OOM, [i for i in chunk.indexes if i % 10 == 0]),
            (0, Outcome.SUCCEEDED, [i for i in chunk.indexes if i % 10]),
            (1, Outcome.SUCCEEDED, [i for i in chunk.indexes if i % 10 == 0]),
        ):
            planned = [
                PlannedAttempt(item=str(i), job_name=f"noop-{i}", tier=tier, memory_bytes=64 << 20)
                for i in indexes
            ]
            ended = JobResult(
                name="-",
                outcome=outcome,
                exit_code=0,
                started_at=now,
                finished_at=now,
                peak_memory_bytes=40 << 20,
            )
            ids = ledger.begin(config.run, config.workload, planned)
            ledger.finish_many([(attempt_id, ended) for attempt_id in ids])
    filled = peak_rss_mib()
    policy = TierPolicy(start=start_tier, max_tier=2, history={})
    execution = SweepExecution(config, None, ledger, policy)  # type: ignore[arg-type]
    began, cpu_began = time.perf_counter(), cpu_seconds(resource.RUSAGE_SELF)
    summary, failures, _ = write_sweep_reports(execution, work / "reports")
    seconds = time.perf_counter() - began
    cpu = cpu_seconds(resource.RUSAGE_SELF) - cpu_began
    sizes = sum(f.stat().st_size for f in (work / "reports").iterdir()) / 2**20
    print(
        f"reports alone over {count} recorded indexes ({summary.attempts} attempts, "
        f"{sum(failures.values())} tier-failure lines): {seconds:.1f} s ({cpu:.1f} s CPU), "
        f"{sizes:.1f} MiB of "
        f"files; peak RSS {peak_rss_mib():.0f} MiB ({filled:.0f} MiB before the reports)"
    )


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def server_cpu_seconds(home: Path) -> float:
    """CPU the embedded Prefect server (with its children) has used so far."""
    server = psutil.Process(int((home / "server.pid").read_text()))
    total = 0.0
    for process in (server, *server.children(recursive=True)):
        times = process.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=18587)
    parser.add_argument("--chunk-size", type=int, default=400)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--no-floors", action="store_true", help="skip the floor runners")
    parser.add_argument(
        "--floor-count", type=int, help="jobs per floor run (default: --count); ratios per job"
    )
    parser.add_argument(
        "--prefect-map", type=int, metavar="N", help="also run plain Prefect .map on N items"
    )
    parser.add_argument("--no-dry-run", action="store_true", help="skip the dry-run print")
    parser.add_argument(
        "--progress", action="store_true", help="log the flow's progress line every 30 s"
    )
    parser.add_argument(
        "--reports-only",
        action="store_true",
        help="only the report step, over a ledger filled with --count indexes (no jobs run)",
    )
    parser.add_argument("--dry-run-child", metavar="TEMPLATE", help=argparse.SUPPRESS)
    parser.add_argument("--map-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dry_run_child:
        return dry_run_print(Path(args.dry_run_child), args.count, args.chunk_size)
    if args.map_child:
        return prefect_map(args.count, args.parallelism)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    work = Path(tempfile.mkdtemp(prefix="sluice-sweep-bench-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def run(args: argparse.Namespace, work: Path) -> None:
    template = work / "noop.yaml"
    template.write_text(yaml.safe_dump(NOOP_JOB))
    if args.reports_only:
        return reports_only(template, args.count, args.chunk_size, work)
    if not args.no_dry_run:
        child = [sys.executable, __file__, "--dry-run-child", str(template)]
        child += ["--count", str(args.count), "--chunk-size", str(args.chunk_size)]
        printed = json.loads(subprocess.run(child, check=True, capture_output=True).stdout)
        print(
            f"dry-run print (own process): {args.count} manifests, {printed['mib']:.1f} MiB of "
            f"JSON in {printed['seconds']:.1f} s, peak RSS {printed['rss']:.0f} MiB"
        )

    memory = 64 << 20
    floor_jobs = args.floor_count or args.count
    popen_before = None
    if not args.no_floors:
        popen_before = popen_floor(floor_jobs, args.parallelism, work, memory)
    with embedded_server() as home:
        from sluice.flows.sweep import tiered_index_sweep

        options = sweep_options(template, args.count, args.chunk_size)
        server_before = server_cpu_seconds(home)
        own_before = cpu_seconds(resource.RUSAGE_SELF)
        children_before = cpu_seconds(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        state = tiered_index_sweep(
            **{k: v for k, v in options.items() if k in tiered_index_sweep.parameters.properties},
            parallelism=args.parallelism,
            quiet=not args.progress,
            report_dir=str(work / "reports"),
            ledger_url=f"sqlite:///{work / 'ledger.db'}",
            return_state=True,
        )
        wall = time.perf_counter() - began
        own = cpu_seconds(resource.RUSAGE_SELF) - own_before
        children = cpu_seconds(resource.RUSAGE_CHILDREN) - children_before
        server_cpu = server_cpu_seconds(home) - server_before
        rss = peak_rss_mib()
        summary = state.result()
        assert summary is not None  # the flow returns its summary
        chunks = -(-args.count // args.chunk_size)
        recorded = task_runs_recorded(state.state_details.flow_run_id, chunks + 1)
        report_mib = sum(f.stat().st_size for f in (work / "reports").iterdir()) / 2**20
        anchor = None
        if args.prefect_map:
            command = [sys.executable, __file__, "--map-child", "--count", str(args.prefect_map)]
            command += ["--parallelism", str(args.parallelism)]
            anchor = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
    shutil.rmtree(home, ignore_errors=True)  # its job logs: one file per index
    print(
        f"sweep flow: {summary.succeeded}/{summary.total} succeeded in {wall:.1f} s "
        f"({1000 * wall / args.count:.2f} ms per index, parallelism {args.parallelism})"
    )
    per = 1000 / args.count
    print(
        f"CPU during the flow: flow process {own:.1f} s ({own * per:.2f} ms per index), "
        f"supervisor + jobs {children:.1f} s ({children * per:.2f} ms), "
        f"Prefect server {server_cpu:.1f} s ({server_cpu * per:.2f} ms)"
    )
    print(f"flow process peak RSS (no dry run in it): {rss:.0f} MiB; reports {report_mib:.1f} MiB")
    print(
        f"Prefect task runs counted on the server: {recorded} of the {chunks + 1} the flow"
        f" creates (one per chunk, its OOM retries included, and the report)"
    )
    if anchor is not None:
        print(
            f"plain Prefect .map over {args.prefect_map} items (own process): "
            f"{anchor['done']} done in {anchor['wall']:.1f} s "
            f"({1000 * anchor['wall'] / args.prefect_map:.2f} ms per item), peak RSS "
            f"{anchor['rss']:.0f} MiB, task runs recorded {anchor['recorded']} of "
            f"{args.prefect_map}"
        )
    if popen_before is None:
        return
    popen_after = popen_floor(floor_jobs, args.parallelism, work, memory)
    scale = args.count / floor_jobs  # 1 unless --floor-count: then the ratio is per job
    popen = (popen_before + popen_after) / 2
    what = "" if scale == 1 else f" ({floor_jobs} jobs; ratio per job)"
    print(
        f"Python Popen-into-cgroup floor{what}: {popen_before:.1f} s before the flow, "
        f"{popen_after:.1f} s after; the flow is {wall / (popen * scale):.2f}x their mean"
    )
    c_wall = c_floor(floor_jobs, args.parallelism, work, memory)
    if c_wall is not None:
        print(
            f"C vfork+exec floor{what}: {c_wall:.1f} s; "
            f"the flow is {wall / (c_wall * scale):.2f}x it"
        )


if __name__ == "__main__":
    main()
