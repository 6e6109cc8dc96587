"""``file_lock``: the one local file lock (``flock``), for files only this machine writes.

Keeping a second run of the same thing out (across processes and machines, with a dead
holder taken over) is the ledger's run lease, ``sluice.ledger.hold_run``. A file lock
is for coordinating writers of local files: the ChunkedGraph journal segments and the
start of this home's embedded server. The kernel drops it when its holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold ``path`` locked (shared or exclusive), waiting for it; created if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
