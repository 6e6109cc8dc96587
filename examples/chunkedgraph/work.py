"""Example chunk work: PyChunkedGraph's atomic-chunk and parent-chunk functions, as stubs.

Use with ``--atomic examples/chunkedgraph/work.py:atomic_chunk
--parent examples/chunkedgraph/work.py:parent_chunk``. Each call appends one line
``<layer> <x> <y> <z>`` to ``$CG_EXAMPLE_LOG`` (if set), so the order chunks ran in
can be inspected. A real atomic function reads the chunk's edges and components and
writes its nodes; a real parent function builds the layer's connected components
from its children's.
"""

import os


def _log(layer: int, coords: tuple[int, int, int]) -> None:
    if path := os.environ.get("CG_EXAMPLE_LOG"):
        with open(path, "a") as out:
            out.write(f"{layer} {coords[0]} {coords[1]} {coords[2]}\n")


def atomic_chunk(coords: tuple[int, int, int], layer: int, config) -> None:
    """Layer 2: would read ``config.data_source.EDGES`` for ``coords`` and write nodes."""
    _log(layer, coords)


def parent_chunk(coords: tuple[int, int, int], layer: int, config) -> None:
    """Layers 3+: would merge the children's components into this chunk's."""
    _log(layer, coords)
