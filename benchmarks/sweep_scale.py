"""18,587 no-op indexes through the whole sweep flow on the local backend, against floors.

In one run, on a private embedded Prefect server: the dry-run print (in a child process,
so its memory is not counted in the flow's peak RSS), the full sweep flow, and the spawn
floors over the same count and parallelism (a Python ``Popen``-into-cgroup runner before
and after the flow, and, with gcc, a C vfork+exec runner; see ``benchmarks/common.py``).
Prints the flow's wall time and its ratio to each floor, the flow process's peak RSS,
and the task runs the server holds for the flow run (counted there, against the chunks
+ 1 the flow submits).
Target (issue 16): the flow at most 1.5x the Popen floor.

    python benchmarks/sweep_scale.py [--count 18587] [--chunk-size 400] [--parallelism 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def dry_run_print(template: Path, count: int, chunk_size: int) -> None:
    """In a child process: time the dry-run print and report it as one JSON line."""
    from sluice.flows.sweep import print_manifests

    from sluice.sweep.config import resolve_config

    began = time.perf_counter()
    config, start_tier, _ = resolve_config(sweep_options(template, count, chunk_size))
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        print_manifests(config, start_tier)
    seconds = time.perf_counter() - began
    size = len(printed.getvalue())
    print(json.dumps({"seconds": seconds, "mib": size / 2**20, "rss": peak_rss_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=18587)
    parser.add_argument("--chunk-size", type=int, default=400)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--no-floors", action="store_true", help="skip the floor runners")
    parser.add_argument("--dry-run-child", metavar="TEMPLATE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dry_run_child:
        return dry_run_print(Path(args.dry_run_child), args.count, args.chunk_size)
    work = Path(tempfile.mkdtemp(prefix="sluice-sweep-bench-"))
    template = work / "noop.yaml"
    template.write_text(yaml.safe_dump(NOOP_JOB))

    child = [sys.executable, __file__, "--dry-run-child", str(template)]
    child += ["--count", str(args.count), "--chunk-size", str(args.chunk_size)]
    printed = json.loads(subprocess.run(child, check=True, capture_output=True).stdout)
    print(
        f"dry-run print (own process): {args.count} manifests, {printed['mib']:.1f} MiB of "
        f"JSON in {printed['seconds']:.1f} s, peak RSS {printed['rss']:.0f} MiB"
    )

    memory = 64 << 20
    popen_before = None
    if not args.no_floors:
        popen_before = popen_floor(args.count, args.parallelism, work, memory)
    with embedded_server():
        from sluice.flows.sweep import tiered_index_sweep

        options = sweep_options(template, args.count, args.chunk_size)
        began = time.perf_counter()
        state = tiered_index_sweep(
            **{k: v for k, v in options.items() if k in tiered_index_sweep.parameters.properties},
            parallelism=args.parallelism,
            quiet=True,
            report_dir=str(work / "reports"),
            ledger_url=f"sqlite:///{work / 'ledger.db'}",
            return_state=True,
        )
        wall = time.perf_counter() - began
        rss = peak_rss_mib()
        summary = state.result()
        assert summary is not None  # the flow returns its summary
        chunks = -(-args.count // args.chunk_size)
        recorded = task_runs_recorded(state.state_details.flow_run_id, chunks + 1)
    print(
        f"sweep flow: {summary.succeeded}/{summary.total} succeeded in {wall:.1f} s "
        f"({1000 * wall / args.count:.2f} ms per index, parallelism {args.parallelism})"
    )
    print(f"flow process peak RSS (no dry run in it): {rss:.0f} MiB")
    print(f"Prefect task runs counted on the server: {recorded} (the flow submits {chunks + 1})")
    if popen_before is None:
        return
    popen_after = popen_floor(args.count, args.parallelism, work, memory)
    popen = (popen_before + popen_after) / 2
    print(
        f"Python Popen-into-cgroup floor: {popen_before:.1f} s before the flow, "
        f"{popen_after:.1f} s after; the flow is {wall / popen:.2f}x their mean"
    )
    c_wall = c_floor(args.count, args.parallelism, work, memory)
    if c_wall is not None:
        print(f"C vfork+exec floor: {c_wall:.1f} s; the flow is {wall / c_wall:.2f}x it")


if __name__ == "__main__":
    main()
