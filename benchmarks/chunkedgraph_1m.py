"""ChunkedGraph ingest at 1,000,000 layer-2 chunks (100 x 100 x 100) with no-op work.

End to end through the flow on local worker processes and a real Prefect server: wall
time, Prefect task runs (counted on the server), the flow process's peak RSS (read right
after the flow, nothing else built in the process) and its workers' peak RSS.
``--axis 216`` runs the real 10,077,696-chunk ingest.

``--kill-at F`` then checks resume after SIGKILL on a fresh table of the same size: it
starts ``sluice chunkedgraph ingest`` (callable work that appends each chunk it ran to a
file), SIGKILLs the whole process group once a fraction F of the chunks ran, runs the
same command again to the end, and counts from that file and the tracker: every chunk
ran, none the tracker had recorded done ran again, and how many ran twice (at most the
chunks running at the kill, whose records were lost with them).

    python benchmarks/chunkedgraph_1m.py [--axis 100] [--workers 2] [--batch-size 4096]
        [--kill-at 0.5]

Starts its own private embedded Prefect server (free port, temporary SLUICE_HOME).
Targets (issue 16): 10M chunks in < 3 min, flow RSS < 300 MB, resume exactly-once.
Anchor: the 1M run (``--axis 100``), 39 s and 249 MiB on 2026-11-29.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_dataset(folder: Path, bounds: tuple[int, int, int]) -> Path:
    """A dataset YAML whose watershed gives ``bounds`` layer-2 chunks."""
    chunk = (256, 256, 128)
    (folder / "ws").mkdir(parents=True)
    size = [b * c for b, c in zip(bounds, chunk, strict=True)]
    info = {"scales": [{"size": size, "voxel_offset": [0, 0, 0]}]}
    (folder / "ws" / "info").write_text(json.dumps(info))
    dataset = folder / "dataset.yml"
    dataset.write_text(
        "data_source:\n  WATERSHED: file://./ws\n"
        f"graph_config:\n  CHUNK_SIZE: {list(chunk)}\n  FANOUT: 2\n"
    )
    return dataset


@contextlib.contextmanager
def prefect_api(home: Path) -> Iterator[None]:
    """A private embedded Prefect server under ``home`` on a free port, stopped after.

    Never whatever answers on a port or ``$PREFECT_API_URL``: the figures are this server's.
    Its start may take minutes on a loaded machine; that is not part of any figure.
    """
    import socket

    os.environ["SLUICE_HOME"] = str(home / "sluice")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from sluice.server import server_environment, start, stop
    from sluice.settings import sluice_home

    try:
        started = start(sluice_home(), port, timeout=900)
        os.environ.update(server_environment(sluice_home()))
        os.environ["PREFECT_API_URL"] = started.api_url
        yield
    finally:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=30)  # before the server goes away
        stop(sluice_home())
        shutil.rmtree(home, ignore_errors=True)


def task_runs(flow_run_id, grid, batch_size: int) -> tuple[int, int]:
    """(recorded on the server, created by the flow) for an ingest of a fresh table: one
    task run per sub-tree and one per parent above them. The server records task runs from
    events after the fact, so this waits (bounded) for it to catch up."""
    from benchmarks.common import task_runs_recorded
    from sluice.chunkedgraph.schedule import subtree_layer

    subtree = subtree_layer(grid, batch_size, grid.layer_count)
    created = sum(grid.count(layer) for layer in range(subtree, grid.layer_count + 1))
    return task_runs_recorded(flow_run_id, created), created


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--axis", type=int, default=100, help="layer-2 chunks per axis")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument(
        "--kill-at", type=float, metavar="F", help="then SIGKILL a run at this fraction, resume"
    )
    parser.add_argument("--no-run", action="store_true", help="only the --kill-at check")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="cg-bench-"))
    print(f"load average at start: {os.getloadavg()}")
    with prefect_api(home):
        if not args.no_run:
            run(args, home)
        if args.kill_at is not None:
            kill_and_resume(args, home)
    print(f"load average at end: {os.getloadavg()}")


def run(args: argparse.Namespace, home: Path) -> None:
    from sluice.flows.chunkedgraph import chunkedgraph_ingest

    from sluice.chunkedgraph.tracker import open_table
    from sluice.chunkedgraph.work import ChunkWork

    dataset = write_dataset(home / "dataset", (args.axis,) * 3)
    table = f"bench-{args.axis}"
    print(f"ingest of {args.axis**3:,} layer-2 chunks (flow call, {args.workers} workers) ...")
    started = time.perf_counter()
    state = chunkedgraph_ingest(
        table=table,
        dataset=str(dataset),
        work=ChunkWork(),
        batch_size=args.batch_size,
        window=2 * args.workers,
        processes=args.workers,
        return_state=True,
    )
    wall = time.perf_counter() - started
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    peak_rss, workers_rss = own.ru_maxrss * 1024, children.ru_maxrss * 1024
    summary = state.result()
    chunks = args.axis**3
    final = open_table(table)
    recorded, created = task_runs(state.state_details.flow_run_id, final.grid, args.batch_size)

    print(f"layer-2 chunks          : {chunks:,} ({args.axis}^3), {final.grid.layer_count} layers")
    print(f"all layers done         : {all(d == c for d, c in summary.values())}")
    for layer, (done, count) in summary.items():
        print(f"  {layer}\t: {done} / {count}")
    print(f"wall time (flow call)   : {wall:.1f} s")
    print(
        f"orchestration per chunk : {wall / chunks * 1e6:.1f} us (all layers: "
        f"{wall / sum(c for _, c in summary.values()) * 1e6:.1f} us per chunk)"
    )
    print(
        f"Prefect task runs       : {recorded} recorded on the server of the {created} the flow"
        " creates (a fresh table: one per sub-tree and one per parent above them)"
    )
    print(f"tracker bitsets on disk : {(final.directory / 'state.bin').stat().st_size:,} B")
    print(f"flow process peak RSS   : {peak_rss / 2**20:.0f} MiB (whole process, Prefect included)")
    print(f"worker processes' peak  : {workers_rss / 2**20:.0f} MiB (the largest one)")
    print(
        f"CPU seconds             : flow process {own.ru_utime + own.ru_stime:.0f} s, worker "
        f"processes {children.ru_utime + children.ru_stime:.0f} s (the server's not counted), "
        f"{os.cpu_count()} cores"
    )


def kill_and_resume(args: argparse.Namespace, home: Path) -> None:
    """SIGKILL ``sluice chunkedgraph ingest`` at a fraction of its chunks, resume, count."""
    import numpy as np

    from sluice.chunkedgraph.chunks import ChunkGrid
    from sluice.chunkedgraph.tracker import open_table

    dataset = write_dataset(home / "killed-dataset", (args.axis,) * 3)
    table = f"killed-{args.axis}"
    record = home / "ran.bin"
    work = Path(__file__).with_name("cg_record_work.py")
    argv = [sys.executable, "-m", "sluice.cli", "chunkedgraph", "ingest", table, str(dataset)]
    argv += ["--atomic", f"{work}:record_chunk", "--workers", str(args.workers)]
    argv += ["--batch-size", str(args.batch_size)]
    env = {**os.environ, "CG_BENCH_RECORD": str(record)}
    grid = ChunkGrid((args.axis,) * 3)
    counts = {layer: grid.count(layer) for layer in grid.layers}
    total = sum(counts.values())
    kill_bytes = int(args.kill_at * total) * 8

    print(f"\nkill and resume: {total:,} chunks in all layers, SIGKILL after {args.kill_at:.0%}")
    began = time.perf_counter()
    with (home / "killed.log").open("w") as log:
        first = subprocess.Popen(
            argv, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
        )
    while first.poll() is None and (not record.exists() or record.stat().st_size < kill_bytes):
        time.sleep(0.05)  # polling the record's size, not synchronising on a guess
    os.killpg(first.pid, signal.SIGKILL)  # the CLI, its flow and its worker processes
    first.wait()
    killed_after = time.perf_counter() - began
    ran_before = record.stat().st_size // 8
    done_before = open_table(table)
    print(
        f"killed after {killed_after:.1f} s: {ran_before:,} chunks had run, the tracker had "
        f"{sum(done_before.done_count.values()):,} recorded done"
    )
    began = time.perf_counter()
    with (home / "resumed.log").open("w+") as log:
        second = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(second.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        second.returncode = code
        print(
            f"resumed run: exit {code} in {time.perf_counter() - began:.1f} s, peak RSS of its "
            f"largest process {usage.ru_maxrss / 1024:.0f} MiB (`sluice` CLI, flow and workers)"
        )
        if code != 0:
            log.seek(0)
            print(log.read()[-2000:])

    rows = np.fromfile(record, dtype=np.uint16)[: (record.stat().st_size // 8) * 4]
    rows = rows.reshape(-1, 4).astype(np.int64)
    offsets = dict(zip(counts, np.cumsum([0, *counts.values()])[:-1], strict=True))
    keys = np.empty(len(rows), dtype=np.int64)
    for layer in counts:
        mask = rows[:, 0] == layer
        _, by, bz = grid.bounds(layer)
        x, y, z = rows[mask, 1], rows[mask, 2], rows[mask, 3]
        keys[mask] = offsets[layer] + (x * by + y) * bz + z
    ran = np.bincount(keys, minlength=total)
    bits = [np.frombuffer(bytes(done_before.done[layer]), np.uint8) for layer in counts]
    recorded = np.concatenate(
        [
            np.unpackbits(b, bitorder="little")[:n]
            for b, n in zip(bits, counts.values(), strict=True)
        ]
    ).astype(bool)
    rerun_done = int(recorded[keys[ran_before:]].sum())
    final = open_table(table)
    all_done = all(final.done_count[layer] == count for layer, count in counts.items())
    print(f"tracker after resume: every chunk of every layer done: {all_done}")
    print(
        f"chunks run: {int((ran > 0).sum()):,} of {total:,} at least once, "
        f"{int((ran == 0).sum())} never, {int((ran > 1).sum())} twice or more "
        f"(running at the kill, their records lost), {rerun_done} recorded done before the "
        "kill and run again"
    )
    exact = all_done and (ran > 0).all() and rerun_done == 0 and (ran > 1).sum() <= args.workers
    print(f"exactly once (done chunks never rerun, <= workers in flight redone): {exact}")


if __name__ == "__main__":
    main()
