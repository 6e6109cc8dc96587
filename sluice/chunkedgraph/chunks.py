"""PyChunkedGraph's chunk hierarchy, exactly: bounds per layer, parents, children.

Layer 2 holds the atomic chunks, ``ceil(voxels / CHUNK_SIZE)`` per axis. A layer-L
chunk's parent is ``coords // 2`` at layer L+1; its children are ``coords * 2 + d``
for d in {0, 1}^3, clipped to the child layer's bounds. ``bounds[L] =
ceil(bounds[2] / 2**(L-2))`` and the layer count is ``ceil(log2(max bounds[2])) + 2``,
so the top layer is the single chunk (0, 0, 0).

PyChunkedGraph computes the layer count with ``log_FANOUT`` but the bounds with a
hard-coded 2, so the hierarchy is only consistent for FANOUT 2; this module supports
exactly that. The layer count is computed with integers (``(n-1).bit_length()``),
which equals PyChunkedGraph's float ``ceil(log(n)/log(2))`` for every n below 2**29.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

FANOUT = 2
Coords = tuple[int, int, int]
_OFFSETS: tuple[Coords, ...] = tuple(itertools.product(range(FANOUT), range(FANOUT), range(FANOUT)))


def chunks_per_axis(voxel_counts: Coords, chunk_size: Coords) -> Coords:
    """Layer-2 chunks per axis: ``ceil(voxels / chunk size)``."""
    return tuple(-(-v // c) for v, c in zip(voxel_counts, chunk_size, strict=True))  # type: ignore[return-value]


def layer_count(atomic_bounds: Coords) -> int:
    """``ceil(log2(max chunks per axis)) + 2``."""
    return (max(atomic_bounds) - 1).bit_length() + 2


@dataclass(frozen=True)
class ChunkGrid:
    """The chunk hierarchy over a volume of ``atomic_bounds`` layer-2 chunks."""

    atomic_bounds: Coords

    def __post_init__(self) -> None:
        if len(self.atomic_bounds) != 3 or min(self.atomic_bounds) < 1:
            raise ValueError(f"atomic bounds must be 3 positive ints, got {self.atomic_bounds}")

    @cached_property
    def layer_count(self) -> int:
        return layer_count(self.atomic_bounds)

    @cached_property
    def _bounds(self) -> dict[int, Coords]:
        return {
            layer: tuple(-(-b >> (layer - 2)) for b in self.atomic_bounds)  # type: ignore[misc]
            for layer in range(2, self.layer_count + 1)
        }

    @property
    def layers(self) -> range:
        """Every tracked layer, 2 up to the top."""
        return range(2, self.layer_count + 1)

    def bounds(self, layer: int) -> Coords:
        """Chunks per axis at ``layer``: ``ceil(bounds[2] / 2**(layer-2))``; (1,1,1) at the top."""
        try:
            return self._bounds[layer]
        except KeyError:
            raise ValueError(f"layer {layer} is outside 2..{self.layer_count}") from None

    def count(self, layer: int) -> int:
        bx, by, bz = self.bounds(layer)
        return bx * by * bz

    def index(self, layer: int, coords: Coords) -> int:
        """Position of ``coords`` in the layer's row-major order (x slowest)."""
        _, by, bz = self.bounds(layer)
        x, y, z = coords
        return (x * by + y) * bz + z

    def coords(self, layer: int, index: int) -> Coords:
        _, by, bz = self.bounds(layer)
        xy, z = divmod(index, bz)
        x, y = divmod(xy, by)
        return (x, y, z)

    def contains(self, layer: int, coords: Coords) -> bool:
        return all(0 <= c < b for c, b in zip(coords, self.bounds(layer), strict=True))

    @staticmethod
    def parent(coords: Coords) -> Coords:
        return (coords[0] // FANOUT, coords[1] // FANOUT, coords[2] // FANOUT)

    def children(self, layer: int, coords: Coords) -> list[Coords]:
        """Children at ``layer - 1`` of the chunk at ``coords``, clipped to that layer's bounds."""
        if layer <= 2:
            return []
        bx, by, bz = self.bounds(layer - 1)
        x, y, z = coords
        found = []
        for dx, dy, dz in _OFFSETS:
            cx, cy, cz = x * FANOUT + dx, y * FANOUT + dy, z * FANOUT + dz
            if cx < bx and cy < by and cz < bz:
                found.append((cx, cy, cz))
        return found

    def atomic_range(self, layer: int, coords: Coords) -> tuple[range, range, range]:
        """The layer-2 coordinate ranges covered by a chunk at ``layer``."""
        span = FANOUT ** (layer - 2)
        return tuple(  # type: ignore[return-value]
            range(c * span, min((c + 1) * span, b))
            for c, b in zip(coords, self.atomic_bounds, strict=True)
        )

    def test_chunks(self) -> list[Coords]:
        """The seed's ``--test`` set: children of the layer-3 chunk at ``bounds[3] // 2``."""
        return self.children(3, self.test_parent())

    def test_parent(self) -> Coords:
        if self.layer_count < 3:
            raise ValueError("--test needs a volume of at least 2 chunks along one axis")
        bx, by, bz = self.bounds(3)
        return (bx // 2, by // 2, bz // 2)
