"""One batch of chunks: run each, and each parent in the batch as soon as its children are done.

A batch is usually a whole sub-tree (its layer-2 chunks and every parent up to its
root), or a single upper-layer parent. Callable work runs one chunk at a time wherever
the task runner puts the batch (a local process, a Dask worker); ``--command`` work runs
as backend jobs through the ingest's shared ``JobPool``, every ready chunk at once. Either
way a record is appended to the batch's own segment right after each chunk ends, so a
killed run loses at most the chunks that were running.
"""

from __future__ import annotations

import contextlib
import random
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.chunkedgraph.chunks import ChunkGrid, Coords
from sluice.chunkedgraph.pool import JobPool
from sluice.chunkedgraph.tracker import (
    DONE,
    FAILED,
    ChunkKey,
    Record,
    SegmentWriter,
    append_records,
    decode,
    writers_lock,
)
from sluice.chunkedgraph.work import ChunkWork, RunChunk, chunk_runner
from sluice.inflight import bounded_futures
from sluice.jobs import JobResult, JobSpec, Outcome


class ChunkKeys:
    """(layer, index) keys packed into two arrays.

    A batch carries thousands of keys into its task run. Packed, they pickle as two byte
    strings, and Prefect, which walks tuples and lists item by item looking for futures
    (three walks per task run), sees a single value: the walks were most of the flow's CPU
    (measured at 300,000 chunks: 12.6 CPU-seconds with tuples, 4.4 packed).
    """

    __slots__ = ("indices", "layers")

    def __init__(self, keys: Iterable[ChunkKey] = ()) -> None:
        self.layers = array("B")
        self.indices = array("I")
        for key in keys:
            self.append(key)

    def append(self, key: ChunkKey) -> None:
        self.layers.append(key[0])
        self.indices.append(key[1])

    def __iter__(self) -> Iterator[ChunkKey]:
        return zip(self.layers, self.indices, strict=True)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class Batch:
    """Chunks to run (``todo``) and chunks known not done that must not run (``blocked``).

    Every child of a chunk in ``todo`` that is in neither set is done already.
    """

    label: str
    todo: ChunkKeys
    blocked: ChunkKeys
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


def settled_outcome(batch: Batch, result: Callable[[], BatchOutcome]) -> BatchOutcome:
    """What the batch did (``result()``, e.g. its task run's); if the batch itself crashed,
    what its segment kept plus a failure for every chunk it did not record (so ``requeue``
    reruns them)."""
    segment = Path(batch.segment)
    try:
        outcome = result()
    except Exception as error:
        records = list(decode(segment.read_bytes())) if segment.exists() else []
        seen = {(record.layer, record.index) for record in records}
        lost = [
            Record(FAILED, layer, index, f"batch crashed: {type(error).__name__}: {error}")
            for layer, index in batch.todo
            if (layer, index) not in seen
        ]
        append_records(segment, lost)
        return BatchOutcome.of(records + lost)
    if not segment.exists():  # ran where $SLUICE_HOME is not shared: keep it here
        append_records(segment, outcome.records())
    return outcome


class _Recorder:
    """One batch's bookkeeping: which chunks are ready, and a record per chunk as it ends."""

    def __init__(self, batch: Batch, grid: ChunkGrid, writer: SegmentWriter) -> None:
        self.grid, self.writer, self.outcome = grid, writer, BatchOutcome()
        self.waiting = _waiting_children(batch, grid)
        self.ready = [key for key in batch.todo if key not in self.waiting]
        random.Random(batch.seed).shuffle(self.ready)

    def failed(self, key: ChunkKey, message: str) -> None:
        self.writer.write(Record(FAILED, *key, message))
        self.outcome.failed.append((*key, message))

    def succeeded(self, key: ChunkKey) -> ChunkKey | None:
        """Record ``key`` done; the parent in this batch it made ready, if any."""
        layer, index = key
        self.writer.write(Record(DONE, layer, index))
        self.outcome.add_done(layer, index)
        if layer >= self.grid.layer_count:
            return None
        coords = self.grid.coords(layer, index)
        parent = (layer + 1, self.grid.index(layer + 1, self.grid.parent(coords)))
        if parent not in self.waiting:
            return None
        self.waiting[parent] -= 1
        if self.waiting[parent]:
            return None
        del self.waiting[parent]
        return parent


@contextlib.contextmanager
def _recording(batch: Batch, grid: ChunkGrid) -> Iterator[_Recorder]:
    segment = Path(batch.segment)
    with writers_lock(segment.parent.parent, exclusive=False):
        writer = SegmentWriter(segment)
        try:
            yield _Recorder(batch, grid, writer)
        finally:
            writer.close()


def run_batch(batch: Batch, grid: ChunkGrid, run_chunk: RunChunk) -> BatchOutcome:
    """Run the batch one chunk at a time, appending each record as soon as it ends."""
    with _recording(batch, grid) as recorder:
        stack = recorder.ready
        while stack:
            layer, index = key = stack.pop()
            try:
                run_chunk(layer, grid.coords(layer, index))
            except Exception as error:  # the chunk's own failure: record it, go on
                recorder.failed(key, f"{type(error).__name__}: {error}")
                continue
            if parent := recorder.succeeded(key):
                stack.append(parent)  # popped next: as soon as its children are done
    return recorder.outcome


def run_batch_jobs(
    batch: Batch, grid: ChunkGrid, pool: JobPool, job_of: Callable[[int, Coords], JobSpec]
) -> BatchOutcome:
    """Run the batch as backend jobs through the shared ``pool``: every ready chunk at
    once, and each parent the moment its last child's job succeeds."""
    with _recording(batch, grid) as recorder:
        ready = deque(recorder.ready)

        def send(key: ChunkKey) -> Future[JobResult]:
            return pool.submit(job_of(key[0], grid.coords(*key)))

        for key, future in bounded_futures(lambda: ready.popleft() if ready else None, send):
            try:
                result = future.result()
            except Exception as error:  # the backend could not run it
                recorder.failed(key, f"{type(error).__name__}: {error}")
                continue
            if result.outcome is not Outcome.SUCCEEDED:
                tail = pool.logs(result.name)[-500:].strip()
                reason = str(result.reason)
                recorder.failed(key, f"{reason}: {tail}" if tail else reason)
            elif parent := recorder.succeeded(key):
                ready.append(parent)
    return recorder.outcome


def execute_batch(
    batch: Batch, grid: ChunkGrid, work: ChunkWork, config: Any, table: str
) -> BatchOutcome:
    """Resolve the callable (or no-op) chunk work where the batch runs, then run the batch."""
    return run_batch(batch, grid, chunk_runner(work, config, table))
