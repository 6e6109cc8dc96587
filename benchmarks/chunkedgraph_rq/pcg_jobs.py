"""PyChunkedGraph's RQ + Redis ingest tracker, re-implemented faithfully with no-op chunk work.

Mirrors pychunkedgraph/ingest/cluster.py (@6d17b53): each finished chunk is added to
the set ``{layer}c``; its id is added to the parent's set ``{parent_layer}_{x}_{y}_{z}``;
the parent's child count is cached in hash ``{parent_layer}``; a tracker job goes on
queue ``t{layer}``. The tracker job enqueues the parent on ``l{parent_layer}`` once the
parent's set holds all its children, then deletes the set and the count (which is why
PyChunkedGraph needs exactly one worker per ``t*`` queue). Benchmarks only: never
imported by Sluice.
"""

from __future__ import annotations

import json

from redis import Redis
from rq import Queue, get_current_job

from sluice.chunkedgraph.chunks import ChunkGrid


def chunk_id_str(layer: int, coords) -> str:
    return f"{layer}_{'_'.join(map(str, coords))}"


def _context() -> tuple[Redis, ChunkGrid]:
    redis = get_current_job().connection
    return redis, ChunkGrid(tuple(json.loads(redis.get("meta"))["atomic_bounds"]))


def _post_task_completion(redis: Redis, grid: ChunkGrid, layer: int, coords) -> None:
    chunk_str = "_".join(map(str, coords))
    redis.sadd(f"{layer}c", chunk_str)

    parent_layer = layer + 1
    if parent_layer > grid.layer_count:
        return
    parent_coords = grid.parent(tuple(coords))
    parent_id_str = chunk_id_str(parent_layer, parent_coords)
    redis.sadd(parent_id_str, chunk_str)

    parent_chunk_str = "_".join(map(str, parent_coords))
    if not redis.hget(parent_layer, parent_chunk_str):
        children_count = len(grid.children(parent_layer, parent_coords))
        redis.hset(parent_layer, parent_chunk_str, children_count)

    Queue(f"t{layer}", connection=redis).enqueue(
        "pcg_jobs.enqueue_parent_task",
        job_id=f"t_{chunk_id_str(layer, coords)}",
        job_timeout="10s",
        result_ttl=0,
        args=(parent_layer, parent_coords),
    )


def enqueue_parent_task(parent_layer: int, parent_coords) -> None:
    redis, _ = _context()
    parent_id_str = chunk_id_str(parent_layer, parent_coords)
    parent_chunk_str = "_".join(map(str, parent_coords))

    children_done = redis.scard(parent_id_str)
    if children_done == 0:  # key deleted: parent already queued
        return
    children_count = int(redis.hget(parent_layer, parent_chunk_str).decode())
    if children_done != children_count:
        return
    Queue(f"l{parent_layer}", connection=redis).enqueue(
        "pcg_jobs.create_parent_chunk",
        job_id=parent_id_str,
        job_timeout=f"{int(parent_layer * parent_layer)}m",
        result_ttl=0,
        args=(parent_layer, parent_coords),
    )
    redis.hdel(parent_layer, parent_chunk_str)
    redis.delete(parent_id_str)


def create_atomic_chunk(coords) -> None:
    redis, grid = _context()
    _post_task_completion(redis, grid, 2, coords)  # no-op chunk work


def create_parent_chunk(parent_layer: int, parent_coords) -> None:
    redis, grid = _context()
    _post_task_completion(redis, grid, parent_layer, parent_coords)  # no-op chunk work
