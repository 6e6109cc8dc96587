"""One batch of chunks: run each, and each parent in the batch as soon as its children are done.

A batch is usually a whole sub-tree (its layer-2 chunks and every parent up to its
root), or a single upper-layer parent. It runs wherever the task runner puts it
(a local process, a Dask worker) and appends a record to its own segment right after
each chunk's work, so a killed run loses at most the chunk that was running.
"""

from __future__ import annotations

import random
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.tracker import (
    DONE,
    FAILED,
    ChunkKey,
    Record,
    SegmentWriter,
    writers_lock,
)
from sluice.chunkedgraph.work import ChunkWork, RunChunk, chunk_runner


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


@dataclass
class BatchOutcome:
    """What a batch did, compactly: done indices per layer, and failures with their error."""

    done: dict[int, array] = field(default_factory=dict)
    failed: list[tuple[int, int, str]] = field(default_factory=list)

    def add_done(self, layer: int, index: int) -> None:
        if layer not in self.done:
            self.done[layer] = array("I")
        self.done[layer].append(index)

    def records(self) -> list[Record]:
        found = [Record(DONE, layer, i) for layer, done in self.done.items() for i in done]
        return found + [Record(FAILED, layer, i, error) for layer, i, error in self.failed]

    @classmethod
    def of(cls, records: list[Record]) -> BatchOutcome:
        outcome = cls()
        for record in records:
            if record.kind == DONE:
                outcome.add_done(record.layer, record.index)
            else:
                outcome.failed.append((record.layer, record.index, record.error))
        return outcome


def run_batch(batch: Batch, grid: ChunkGrid, run_chunk: RunChunk) -> BatchOutcome:
    """Run the batch, appending each chunk's record to its segment as soon as it ends."""
    waiting = _waiting_children(batch, grid)
    stack = [key for key in batch.todo if key not in waiting]
    random.Random(batch.seed).shuffle(stack)
    outcome = BatchOutcome()
    segment = Path(batch.segment)
    top = grid.layer_count
    with writers_lock(segment.parent.parent, exclusive=False):
        writer = SegmentWriter(segment)
        try:
            while stack:
                layer, index = stack.pop()
                coords = grid.coords(layer, index)
                try:
                    run_chunk(layer, coords)
                except Exception as error:  # the chunk's own failure: record it, go on
                    message = f"{type(error).__name__}: {error}"
                    writer.write(Record(FAILED, layer, index, message))
                    outcome.failed.append((layer, index, message))
                    continue
                writer.write(Record(DONE, layer, index))
                outcome.add_done(layer, index)
                if layer < top:
                    parent = (layer + 1, grid.index(layer + 1, grid.parent(coords)))
                    if parent in waiting:
                        waiting[parent] -= 1
                        if not waiting[parent]:
                            del waiting[parent]
                            stack.append(parent)  # popped next: as soon as children are done
        finally:
            writer.close()
    return outcome


def execute_batch(
    batch: Batch, grid: ChunkGrid, work: ChunkWork, config: Any, table: str
) -> BatchOutcome:
    """Resolve the chunk work where the batch runs, then run the batch."""
    runner = chunk_runner(work, config, table)
    try:
        return run_batch(batch, grid, runner)
    finally:
        if close := getattr(runner, "close", None):
            close()
