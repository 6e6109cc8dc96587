"""Chunk work for the ingest tests (loaded by file path, as users' work is).

Every successful call appends ``<layer> <x> <y> <z>`` to ``$CG_COUNT`` (an append-only
record of what ran, in order). ``$CG_FAIL`` names a file of ``<layer> <x> <y> <z>``
lines that must fail while it exists. ``$CG_KILL_AT=N`` with ``$CG_KILL_FIFO``: the first
call that finds at least N lines already counted announces itself on the FIFO (once, across
worker processes) and then hangs until the test kills the run. "At least", not "exactly":
two worker processes may both read N-1 and append, so no call would ever read exactly N.
"""

import os
import time
from pathlib import Path


def _hang_here(count: Path) -> None:
    fifo = os.environ.get("CG_KILL_FIFO")
    at = int(os.environ.get("CG_KILL_AT", "0"))
    if not fifo or not count.exists() or len(count.read_text().splitlines()) < at:
        return
    try:  # one announcer, even when two worker processes get here at once
        os.close(os.open(f"{fifo}.fired", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    with open(fifo, "w") as announce:
        announce.write("about to hang\n")
    time.sleep(3600)  # not synchronisation: this work never finishes; the test kills it


def chunk(coords, layer, config) -> None:
    line = f"{layer} {coords[0]} {coords[1]} {coords[2]}"
    count = Path(os.environ["CG_COUNT"])
    _hang_here(count)
    fail = os.environ.get("CG_FAIL")
    if fail and Path(fail).exists() and line in Path(fail).read_text().splitlines():
        raise RuntimeError(f"injected failure at {line}")
    assert config.graph_config.CHUNK_SIZE, "the dataset config reaches the work"
    with count.open("a") as out:
        out.write(line + "\n")
