"""18,587 no-op indexes on the local backend: dry-run print and a full run.

Prints wall time, orchestrator peak RSS, and Prefect task runs created vs recorded.
Targets (issue 2): full-run orchestration under 2 minutes on 2 cores, peak RSS
under 500 MB, every created task run recorded.

    python benchmarks/sweep_scale.py [--count 18587] [--chunk-size 400] [--parallelism 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import embedded_server, peak_rss_mib, task_runs_recorded  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=18587)
    parser.add_argument("--chunk-size", type=int, default=400)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sluice-sweep-bench-"))
    template = work / "noop.yaml"
    template.write_text(yaml.safe_dump(NOOP_JOB))

    with embedded_server():
        from flows.sweep import print_manifests, tiered_index_sweep
        from sluice.sweep.config import resolve_config

        common = dict(
            template_path=str(template),
            source_job=None,
            namespace="bench",
            start=0,
            count=args.count,
            indexes=None,
            index_file=None,
            limit=None,
            job_name_prefix="noop",
            batch_label=None,
            batch_label_template="tier{tier}-chunk-{start:05d}",
            chunk_size=args.chunk_size,
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
        began = time.perf_counter()
        config, start_tier, _ = resolve_config(**common)
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            print_manifests(config, start_tier)
        print_seconds = time.perf_counter() - began
        print(
            f"dry-run print: {args.count} manifests, {len(printed.getvalue()) / 2**20:.1f} MiB "
            f"of JSON in {print_seconds:.1f} s"
        )

        began = time.perf_counter()
        state = tiered_index_sweep(
            **{k: v for k, v in common.items() if k in tiered_index_sweep.parameters.properties},
            parallelism=args.parallelism,
            quiet=True,
            report_dir=str(work / "reports"),
            ledger_url=f"sqlite:///{work / 'ledger.db'}",
            return_state=True,
        )
        wall = time.perf_counter() - began
        summary = state.result()
        created = len(config.chunks) + 1
        recorded = task_runs_recorded(state.state_details.flow_run_id, created)
        print(
            f"full run: {summary.succeeded}/{summary.total} succeeded in {wall:.1f} s "
            f"({1000 * wall / args.count:.2f} ms per index, parallelism {args.parallelism})"
        )
        print(f"orchestrator peak RSS: {peak_rss_mib():.0f} MiB")
        print(f"Prefect task runs: {created} created, {recorded} recorded")


if __name__ == "__main__":
    main()
