"""Chunk math against PyChunkedGraph's formulas, on random bounds."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.chunkedgraph.chunks import ChunkGrid, chunks_per_axis

bounds = st.tuples(*[st.integers(1, 40)] * 3)
big_axis = st.integers(1, 2**20)


def reference_layer_count(atomic):
    """PyChunkedGraph: int(np.ceil(log_n(np.max(n_chunks), FANOUT))) + 2, log_n = log(x)/log(n)."""
    return int(math.ceil(math.log(max(atomic)) / math.log(2))) + 2


def reference_bounds(atomic, layer, layer_count):
    """PyChunkedGraph's layer_chunk_bounds (layers 2..top-1); the top layer is one chunk."""
    if layer == layer_count:
        return (1, 1, 1)
    return tuple(int(math.ceil(b / 2 ** (layer - 2))) for b in atomic)


@given(st.tuples(big_axis, big_axis, big_axis))
def test_layer_count_and_bounds_match_pychunkedgraph(atomic):
    grid = ChunkGrid(atomic)
    assert grid.layer_count == reference_layer_count(atomic)
    for layer in grid.layers:
        assert grid.bounds(layer) == reference_bounds(atomic, layer, grid.layer_count)
    assert grid.bounds(grid.layer_count) == (1, 1, 1)


@given(st.tuples(*[st.integers(1, 10**6)] * 3), st.tuples(*[st.integers(1, 4096)] * 3))
def test_chunks_per_axis_is_ceil(voxels, chunk_size):
    assert chunks_per_axis(voxels, chunk_size) == tuple(
        math.ceil(v / c) for v, c in zip(voxels, chunk_size, strict=True)
    )


@settings(max_examples=60, deadline=None)
@given(bounds)
def test_children_partition_each_layer_and_parents_are_in_bounds(atomic):
    grid = ChunkGrid(atomic)
    for layer in list(grid.layers)[1:]:
        seen = []
        for index in range(grid.count(layer)):
            coords = grid.coords(layer, index)
            assert grid.index(layer, coords) == index
            children = grid.children(layer, coords)
            assert 1 <= len(children) <= 8
            for child in children:
                assert grid.contains(layer - 1, child)
                assert grid.parent(child) == coords
            seen.extend(children)
        assert len(seen) == len(set(seen)) == grid.count(layer - 1)


@settings(max_examples=60, deadline=None)
@given(bounds)
def test_children_are_the_clipped_fanout_cube(atomic):
    grid = ChunkGrid(atomic)
    for layer in list(grid.layers)[1:]:
        child_bounds = grid.bounds(layer - 1)
        for index in range(grid.count(layer)):
            x, y, z = grid.coords(layer, index)
            expected = [
                (2 * x + dx, 2 * y + dy, 2 * z + dz)
                for dx in (0, 1)
                for dy in (0, 1)
                for dz in (0, 1)
                if 2 * x + dx < child_bounds[0]
                and 2 * y + dy < child_bounds[1]
                and 2 * z + dz < child_bounds[2]
            ]
            assert grid.children(layer, (x, y, z)) == expected


@given(bounds.filter(lambda b: max(b) >= 2))
def test_test_chunks_are_children_of_the_middle_layer3_chunk(atomic):
    grid = ChunkGrid(atomic)
    middle = tuple(b // 2 for b in grid.bounds(3))
    assert grid.test_parent() == middle
    assert grid.test_chunks() == grid.children(3, middle)
    assert 1 <= len(grid.test_chunks()) <= 8


def test_the_seed_example_and_the_benchmark_volume():
    small = ChunkGrid((4, 4, 4))
    assert [small.count(layer) for layer in small.layers] == [64, 8, 1]
    assert len(small.test_chunks()) == 8
    million = ChunkGrid((100, 100, 100))
    assert million.layer_count == 9
    assert million.count(2) == 1_000_000
    assert ChunkGrid((1, 1, 1)).layer_count == 2
