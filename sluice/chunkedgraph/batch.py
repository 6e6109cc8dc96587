"""One batch of chunks: run each, and each parent in the batch as soon as its children are done.

A batch is usually a whole sub-tree (its layer-2 chunks and every parent up to its
root), or a single upper-layer parent. It runs wherever the task runner puts it
(a local process, a Dask worker) and appends a record to its own segment right after
each chunk's work, so a killed run loses at most the chunk that was running.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.tracker import (
    DONE,
    FAILED,
    ChunkKey,
    Record,
    SegmentWriter,
    encode,
    writers_lock,
)
from sluice.chunkedgraph.work import RunChunk


@dataclass(frozen=True)
class Batch:
    """Chunks to run (``todo``) and chunks known not done that must not run (``blocked``).

    Every child of a chunk in ``todo`` that is in neither set is done already.
    """

    label: str
    todo: tuple[ChunkKey, ...]
    blocked: tuple[ChunkKey, ...]
    segment: str
    seed: int


def _waiting_children(batch: Batch, grid: ChunkGrid) -> dict[ChunkKey, int]:
    pending = set(batch.todo) | set(batch.blocked)
    waiting = {}
    for layer, index in batch.todo:
        if layer == 2:
            continue
        children = grid.children(layer, grid.coords(layer, index))
        count = sum((layer - 1, grid.index(layer - 1, child)) in pending for child in children)
        if count:
            waiting[(layer, index)] = count
    return waiting


def run_batch(batch: Batch, grid: ChunkGrid, run_chunk: RunChunk) -> bytes:
    """Run the batch; returns its encoded records (the same bytes as its segment)."""
    waiting = _waiting_children(batch, grid)
    stack = [key for key in batch.todo if key not in waiting]
    random.Random(batch.seed).shuffle(stack)
    out = bytearray()
    segment = Path(batch.segment)
    with writers_lock(segment.parent.parent, exclusive=False):
        writer = SegmentWriter(segment)
        try:
            while stack:
                layer, index = stack.pop()
                coords = grid.coords(layer, index)
                try:
                    run_chunk(layer, coords)
                except Exception as error:  # the chunk's own failure: record it, go on
                    record = Record(FAILED, layer, index, f"{type(error).__name__}: {error}")
                else:
                    record = Record(DONE, layer, index)
                    parent = (
                        (layer + 1, grid.index(layer + 1, grid.parent(coords)))
                        if (layer < grid.layer_count)
                        else None
                    )
                    if parent in waiting:
                        waiting[parent] -= 1
                        if not waiting[parent]:
                            del waiting[parent]
                            stack.append(parent)  # popped next: as soon as children are done
                writer.write(record)
                out += encode(record)
        finally:
            writer.close()
    return bytes(out)
