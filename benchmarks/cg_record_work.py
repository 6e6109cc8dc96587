"""ChunkedGraph work for ``chunkedgraph_1m.py --kill-at``: record each chunk that ran.

Appends ``(layer, x, y, z)`` as four native uint16 to ``$CG_BENCH_RECORD`` (one
``O_APPEND`` write per chunk, so a SIGKILL never leaves half a record). The ingest loads
this file by path once per batch; the descriptor is kept where a reload finds it.
"""

from __future__ import annotations

import os
import struct
import sys
import types

_kept = sys.modules.setdefault("cg_bench_record_fd", types.ModuleType("cg_bench_record_fd"))


def record_chunk(coords: tuple[int, int, int], layer: int, config: object) -> None:
    """No work; one record of this chunk."""
    fd = getattr(_kept, "fd", None)
    if fd is None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        fd = os.open(os.environ["CG_BENCH_RECORD"], flags, 0o600)
        setattr(_kept, "fd", fd)  # noqa: B010 - a plain module object, kept across reloads
    os.write(fd, struct.pack("=4H", layer, *coords))
