"""Side by side: PyChunkedGraph's RQ + Redis tracker vs Sluice's, on the same no-op chunks.

Starts Debian's ``redis-server`` on a free port, enqueues every layer-2 chunk of an
``X x Y x Z`` volume (shuffled, ``enqueue_many`` in batches of 1000 as PyChunkedGraph
#428 does) and runs forking ``rq worker`` processes as PyChunkedGraph deploys them:
one on the ``l*`` chunk queues and exactly one on the ``t*`` tracker queues. Measures
the wall time until the root chunk is recorded done, the orchestration time per chunk
job, and Redis ``used_memory`` (tracker state = the ``{layer}c`` sets and parent keys).
Then runs Sluice's flow with ``--noop`` on the same volume.

    python benchmarks/chunkedgraph_rq/run.py [--bounds 16 16 8] [--simple-worker] [--skip-sluice]

The RQ figures are measured on this subset and extrapolated linearly to 1,000,000 and
10,000,000 layer-2 chunks (per-chunk cost and per-chunk set members are constant).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRACKER_KEY = re.compile(r"^\d+c$|^\d+(_\d+){3}$|^\d+$")  # {L}c sets, parent sets, counts
sys.path.insert(0, str(HERE.parents[1]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    server = shutil.which("redis-server")
    if not server:
        sys.exit("redis-server not found: apt-get install -y redis-server")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    return process, port


def wait_for(redis, predicate, timeout: float, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the RQ ingest did not finish in time")
        time.sleep(poll)


def run_rq(bounds: tuple[int, int, int], simple: bool, timeout: float) -> dict:
    from redis import Redis
    from rq import Queue

    from sluice.chunkedgraph.chunks import ChunkGrid

    grid = ChunkGrid(bounds)
    folder = Path(tempfile.mkdtemp(prefix="cg-rq-"))
    server, port = start_redis(folder)
    url = f"redis://127.0.0.1:{port}/0"
    redis = Redis.from_url(url)
    wait_for(redis, lambda: _pings(redis), 10)
    baseline = redis.info("memory")["used_memory"]
    redis.set("meta", json.dumps({"atomic_bounds": list(bounds)}))

    coords = [grid.coords(2, index) for index in range(grid.count(2))]
    random.shuffle(coords)
    queue = Queue("l2", connection=redis)
    started_enqueue = time.perf_counter()
    for start in range(0, len(coords), 1000):
        queue.enqueue_many(
            [
                Queue.prepare_data(
                    "pcg_jobs.create_atomic_chunk",
                    args=(c,),
                    job_id=f"2_{c[0]}_{c[1]}_{c[2]}",
                    timeout="3m",  # type: ignore[arg-type]  # rq parses "3m"; its annotation says int
                    result_ttl=0,
                )
                for c in coords[start : start + 1000]
            ]
        )
    enqueue_seconds = time.perf_counter() - started_enqueue
    queued_memory = redis.info("memory")["used_memory"] - baseline

    layers = list(grid.layers)
    worker_class = ["--worker-class", "rq.worker.SimpleWorker"] if simple else []
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{HERE.parents[1]}"}
    common = ["--url", url, "--path", str(HERE), "--quiet", *worker_class]
    rq = str(Path(sys.executable).with_name("rq"))
    chunk_queues = [f"l{layer}" for layer in reversed(layers)]  # parents first, as deployed
    tracker_queues = [f"t{layer}" for layer in layers[:-1]]
    started = time.perf_counter()
    workers = [
        subprocess.Popen(
            [rq, "worker", *common, *chunk_queues],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [rq, "worker", *common, *tracker_queues],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    top = f"{grid.layer_count}c"
    try:
        wait_for(redis, lambda: redis.scard(top) == 1, timeout)
        wall = time.perf_counter() - started
        memory = redis.info("memory")
        tracker_keys = sum(
            redis.memory_usage(key, samples=0) or 0
            for key in redis.scan_iter()
            if TRACKER_KEY.match(key.decode())
        )
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait()
    done = {layer: redis.scard(f"{layer}c") for layer in layers}
    server.terminate()
    server.wait()
    shutil.rmtree(folder, ignore_errors=True)
    chunk_jobs = sum(grid.count(layer) for layer in layers)
    return {
        "grid": grid,
        "done": done,
        "wall": wall,
        "enqueue": enqueue_seconds,
        "chunk_jobs": chunk_jobs,
        "jobs": 2 * chunk_jobs - 1,  # every chunk but the root also runs a tracker job
        "tracker_bytes": tracker_keys,
        "used_bytes": memory["used_memory"] - baseline,
        "peak_bytes": memory["used_memory_peak"] - baseline,
        "queued_bytes": queued_memory,
    }


def _pings(redis) -> bool:
    try:
        return redis.ping()
    except Exception:
        return False


def run_sluice(bounds: tuple[int, int, int]) -> dict:
    """Sluice's flow with no-op work over the same volume, on the same 2 local workers."""
    sys.path.insert(0, str(HERE.parent))
    from chunkedgraph_1m import prefect_api

    home = Path(tempfile.mkdtemp(prefix="cg-sluice-"))
    with prefect_api(home):
        return _sluice_noop(bounds, home)


def _sluice_noop(bounds: tuple[int, int, int], home: Path) -> dict:
    from chunkedgraph_1m import task_runs
    from sluice.flows.chunkedgraph import chunkedgraph_ingest

    from sluice.chunkedgraph.schedule import DEFAULT_BATCH_SIZE
    from sluice.chunkedgraph.tracker import open_table
    from sluice.chunkedgraph.work import ChunkWork

    folder = home / "dataset"
    (folder / "ws").mkdir(parents=True)
    chunk = (256, 256, 128)
    size = [b * c for b, c in zip(bounds, chunk, strict=True)]
    (folder / "ws" / "info").write_text(json.dumps({"scales": [{"size": size}]}))
    (folder / "dataset.yml").write_text(
        f"data_source:\n  WATERSHED: file://./ws\ngraph_config:\n  CHUNK_SIZE: {list(chunk)}\n"
    )
    table = "rq-side-by-side"
    started = time.perf_counter()
    state = chunkedgraph_ingest(
        table=table,
        dataset=str(folder / "dataset.yml"),
        work=ChunkWork(),
        window=4,
        processes=2,
        return_state=True,
    )
    wall = time.perf_counter() - started
    tracked = open_table(table)
    recorded, _ = task_runs(state.state_details.flow_run_id, tracked.grid, DEFAULT_BATCH_SIZE)
    return {
        "wall": wall,
        "task_runs": recorded,
        "state_bytes": (tracked.directory / "state.bin").stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bounds", type=int, nargs=3, default=[16, 16, 8])
    parser.add_argument("--simple-worker", action="store_true", help="rq SimpleWorker (no fork)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--skip-sluice", action="store_true")
    args = parser.parse_args()
    bounds = tuple(args.bounds)

    rq = run_rq(bounds, args.simple_worker, args.timeout)
    grid = rq["grid"]
    atomic = grid.count(2)
    kind = "SimpleWorker" if args.simple_worker else "forking Worker"
    print(f"RQ + Redis ({kind}), {atomic:,} layer-2 chunks {bounds}, {grid.layer_count} layers")
    print("  " + ", ".join(f"{layer}: {n}/{grid.count(layer)}" for layer, n in rq["done"].items()))
    print(f"  enqueue layer 2          : {rq['enqueue']:.2f} s")
    print(f"  wall time to root        : {rq['wall']:.1f} s ({rq['jobs']:,} RQ jobs)")
    per_chunk = rq["wall"] / rq["chunk_jobs"]
    print(
        f"  orchestration per chunk  : {per_chunk * 1e3:.2f} ms (all layers; "
        f"{rq['wall'] / rq['jobs'] * 1e3:.2f} ms per RQ job)"
    )
    per_chunk_bytes = rq["tracker_bytes"] / rq["chunk_jobs"]
    print(
        f"  tracker keys at end      : {rq['tracker_bytes'] / 2**20:.3f} MiB "
        f"({per_chunk_bytes:.0f} B per chunk, MEMORY USAGE of the {{layer}}c sets, parent keys)"
    )
    print(
        f"  Redis used_memory        : {rq['used_bytes'] / 2**20:.2f} MiB at the end over an "
        f"empty server (peak {rq['peak_bytes'] / 2**20:.2f} MiB; "
        f"{rq['queued_bytes'] / 2**20:.2f} MiB with layer 2 queued)"
    )
    for target in (1_000_000, 10_000_000):
        chunks = target * 8 / 7  # all layers of a full octree over `target` layer-2 chunks
        print(
            f"  extrapolated to {target:>10,} : {per_chunk * chunks / 3600:.1f} h on 2 workers, "
            f"{per_chunk_bytes * chunks / 2**20:,.0f} MiB tracker state in Redis"
        )
    if not args.skip_sluice:
        sluice = run_sluice(bounds)
        print(
            f"Sluice (--noop), same {atomic:,} chunks: {sluice['wall']:.1f} s wall, "
            f"{sluice['wall'] / rq['chunk_jobs'] * 1e3:.3f} ms per chunk, "
            f"{sluice['task_runs']} task runs, tracker state {sluice['state_bytes']:,} B"
        )


if __name__ == "__main__":
    main()
