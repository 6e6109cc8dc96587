"""Which batches to run next, from the tracker state alone.

Batches are whole sub-trees rooted at layer ``subtree_layer`` (up to ``batch_size``
layer-2 chunks each, roots in shuffled order) and, above them, single parent chunks
dispatched the moment their last child is recorded done. Only the flow's single
tracker thread calls this, so "all children done, not yet dispatched" is decided in
one place and no parent is ever dispatched twice — no single-listener rule needed.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from sluice.chunkedgraph.batch import Batch, BatchOutcome, ChunkKeys
from sluice.chunkedgraph.chunks import FANOUT, ChunkGrid, Coords
from sluice.chunkedgraph.tracker import ChunkKey, TableState

DEFAULT_BATCH_SIZE = 4096


def subtree_layer(grid: ChunkGrid, batch_size: int, ceiling: int) -> int:
    """Highest layer whose sub-trees hold at most ``batch_size`` layer-2 chunks, below the top."""
    depth = 0
    while FANOUT ** (3 * (depth + 1)) <= batch_size:
        depth += 1
    return max(2, min(2 + depth, ceiling - 1))


class Scheduler:
    """Plans batches over one table's state; ``test`` stops at the seed's test parent."""

    def __init__(
        self, state: TableState, *, test: bool = False, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        self.state = state
        self.grid: ChunkGrid = state.grid
        if test:
            self.ceiling = self.subtree = 3
            roots = [self.grid.index(3, self.grid.test_parent())]
        else:
            self.ceiling = self.grid.layer_count
            self.subtree = subtree_layer(self.grid, batch_size, self.ceiling)
            roots = list(range(self.grid.count(self.subtree)))
            random.shuffle(roots)
        self._roots: deque[int] = deque(roots)
        self._ready: deque[ChunkKey] = deque()
        self._dispatched: set[ChunkKey] = set()
        self._sequence = itertools.count()
        for layer in range(self.subtree + 1, self.ceiling + 1):
            for index in range(self.grid.count(layer)):
                self._consider((layer, index))

    def next_batch(self) -> Batch | None:
        """Ready parents first, then the next sub-tree with anything left to run."""
        if self._ready:
            key = self._ready.popleft()
            return self._batch(f"L{key[0]} {self.grid.coords(*key)}", ChunkKeys([key]), ChunkKeys())
        while self._roots:
            root = (self.subtree, self._roots.popleft())
            todo, blocked = self._subtree_work(root)
            if todo:
                return self._batch(f"L{root[0]} {self.grid.coords(*root)} subtree", todo, blocked)
        return None

    def absorb(self, newly_done: list[ChunkKey]) -> None:
        """Queue every parent above the sub-trees whose last child just finished.

        Parents at or below ``subtree`` belong to the same sub-tree batch as their
        children, which runs them itself.
        """
        for layer, index in newly_done:
            if layer < self.subtree or layer >= self.ceiling:
                continue
            parent = (
                layer + 1,
                self.grid.index(layer + 1, self.grid.parent(self.grid.coords(layer, index))),
            )
            self._consider(parent)

    def _consider(self, key: ChunkKey) -> None:
        layer, index = key
        state = self.state
        if key in self._dispatched or key in state.failures or state.is_done(layer, index):
            return
        children = self.grid.children(layer, self.grid.coords(layer, index))
        if all(state.is_done(layer - 1, self.grid.index(layer - 1, c)) for c in children):
            self._dispatched.add(key)
            self._ready.append(key)

    def _subtree_work(self, root: ChunkKey) -> tuple[ChunkKeys, ChunkKeys]:
        todo, blocked = ChunkKeys(), ChunkKeys()
        if self.state.is_done(*root):
            return todo, blocked
        root_coords = self.grid.coords(*root)
        for layer in range(2, root[0] + 1):
            for coords in self._descendants(root[0], root_coords, layer):
                key = (layer, self.grid.index(layer, coords))
                if self.state.is_done(*key):
                    continue
                (blocked if key in self.state.failures else todo).append(key)
        return todo, blocked

    def _descendants(self, layer: int, coords: Coords, at: int) -> Iterator[Coords]:
        span = FANOUT ** (layer - at)
        x, y, z = (
            range(c * span, min((c + 1) * span, b))
            for c, b in zip(coords, self.grid.bounds(at), strict=True)
        )
        return itertools.product(x, y, z)

    def _batch(self, label: str, todo: ChunkKeys, blocked: ChunkKeys) -> Batch:
        name = f"{next(self._sequence):06d}-{uuid.uuid4().hex[:8]}.seg"
        return Batch(
            label=label,
            todo=todo,
            blocked=blocked,
            segment=str(self.state.segments_dir / name),
            seed=random.getrandbits(32),
        )


def record_outcome(
    state: TableState, scheduler: Scheduler, batch: Batch, outcome: BatchOutcome
) -> None:
    """Set the batch's done bits and failures; queue the parents it completed."""
    newly_done = []
    for layer, indices in outcome.done.items():
        newly = state.mark_done(layer, indices)
        if layer >= scheduler.subtree:
            newly_done += [(layer, index) for index in newly]
    for layer, index, error in outcome.failed:
        state.mark_failed(layer, index, error)
    state.mark_absorbed(Path(batch.segment))
    scheduler.absorb(newly_done)
