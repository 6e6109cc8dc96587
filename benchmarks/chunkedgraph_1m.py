"""ChunkedGraph ingest at 1,000,000 layer-2 chunks (100 x 100 x 100) with no-op work.

End to end through the flow on local worker processes and a real Prefect server:
wall time, Prefect task runs (counted on the server), the flow process's peak RSS, and
the size of the tracker's data structures (bitsets + scheduler, tracemalloc, built apart
from the run at 1M and 10M chunks). ``--axis 216`` runs the 10,077,696-chunk ingest.

    python benchmarks/chunkedgraph_1m.py [--axis 100] [--workers 2] [--batch-size 4096]

Starts its own private embedded Prefect server (free port, temporary SLUICE_HOME).
Targets (issue 7): < 2 min, tracker < 200 MB, task runs in the hundreds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path


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


def tracker_bytes(atomic_bounds: tuple[int, int, int], batch_size: int) -> int:
    """Peak bytes allocated building the tracker state and scheduler, plus one batch plan."""
    from sluice.chunkedgraph.chunks import ChunkGrid
    from sluice.chunkedgraph.schedule import Scheduler
    from sluice.chunkedgraph.tracker import TableState

    tracemalloc.start()
    state = TableState(Path(tempfile.mkdtemp()), ChunkGrid(atomic_bounds))
    scheduler = Scheduler(state, batch_size=batch_size)
    batch = scheduler.next_batch()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del batch
    return peak


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


def count_task_runs(flow_run_id) -> int:
    """Task runs the server recorded for the flow run (``POST /task_runs/count``)."""
    import base64

    import httpx
    from prefect.settings import PREFECT_API_AUTH_STRING

    auth = PREFECT_API_AUTH_STRING.value()  # the embedded server's credential, if any
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    response = httpx.post(
        f"{os.environ['PREFECT_API_URL']}/task_runs/count",
        json={"flow_runs": {"id": {"any_": [str(flow_run_id)]}}},
        headers=headers,
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--axis", type=int, default=100, help="layer-2 chunks per axis")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4096)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="cg-bench-"))
    with prefect_api(home):
        run(args, home)


def run(args: argparse.Namespace, home: Path) -> None:
    from sluice.flows.chunkedgraph import chunkedgraph_ingest

    from sluice.chunkedgraph.tracker import open_table
    from sluice.chunkedgraph.work import ChunkWork

    dataset = write_dataset(home / "dataset", (args.axis,) * 3)
    table = f"bench-{args.axis}"
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
    summary = state.result()
    chunks = args.axis**3
    final = open_table(table)
    task_runs = count_task_runs(state.state_details.flow_run_id)
    at_1m = tracker_bytes((args.axis,) * 3, args.batch_size)
    at_10m = tracker_bytes((216, 216, 216), args.batch_size)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    print(f"layer-2 chunks          : {chunks:,} ({args.axis}^3), {final.grid.layer_count} layers")
    print(f"all layers done         : {all(d == c for d, c in summary.values())}")
    for layer, (done, count) in summary.items():
        print(f"  {layer}\t: {done} / {count}")
    print(f"wall time (flow call)   : {wall:.1f} s")
    print(
        f"orchestration per chunk : {wall / chunks * 1e6:.1f} us (all layers: "
        f"{wall / sum(c for _, c in summary.values()) * 1e6:.1f} us per chunk)"
    )
    print(f"Prefect task runs       : {task_runs}")
    print(f"tracker bitsets on disk : {(final.directory / 'state.bin').stat().st_size:,} B")
    print(
        f"tracker data structures, {chunks:,}: {at_1m / 2**20:.2f} MiB "
        "(tracemalloc peak of bitsets + scheduler + one batch plan, built apart from the run)"
    )
    print(
        f"tracker data structures, 10,077,696 (216^3): {at_10m / 2**20:.2f} MiB "
        "(same, structures only: no 10M ingest ran)"
    )
    print(f"flow process peak RSS   : {peak_rss / 2**20:.0f} MiB (whole process, Prefect included)")


if __name__ == "__main__":
    main()
