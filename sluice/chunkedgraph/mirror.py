"""The tracker state mirrored to object storage, for flow pods that do not keep their disk.

With ``state_url`` (``s3://bucket/prefix``, ``gs://...``, ``file://...``) every snapshot the
tracker saves (every few seconds and at the end) is also put, atomically, at
``<state_url>/<table>/state.bin`` beside ``table.json`` and ``history.json`` (the done
counts over time), through ``sluice.storage``. A flow
pod rescheduled onto an empty ``$SLUICE_HOME`` restores both before it opens the table, and
resumes from there: at most the chunks finished since the last snapshot (a few seconds of
work) run again. The per-chunk journal stays on local disk.
"""

from __future__ import annotations

from pathlib import Path

from sluice.chunkedgraph.history import FILE_NAME as HISTORY
from sluice.errors import SluiceInputError
from sluice.storage import REMOTE_SCHEMES, Storage, StorageError, scheme_of

# the snapshot last: a mirror with a snapshot has the files before it too
FILES = ("table.json", HISTORY, "state.bin")


def check_state_url(url: str) -> None:
    """Refuse a state URL whose scheme the storage layer cannot write."""
    try:
        scheme = scheme_of(url)
    except StorageError as error:
        raise SluiceInputError(f"--state-url {error}") from None
    if scheme not in (*REMOTE_SCHEMES, "file"):
        raise SluiceInputError(f"--state-url {url}: expected s3://, gs:// or file://")


class StateMirror:
    """Puts the table's snapshot at ``<url>/<table>/`` and restores it onto an empty home."""

    def __init__(self, storage: Storage, url: str, table: str) -> None:
        self.storage = storage
        self.base = f"{url.rstrip('/')}/{table}"

    def restore(self, directory: Path) -> bool:
        """Copy the mirrored state into ``directory`` if it has no snapshot of its own."""
        if (directory / "state.bin").exists() or not self.storage.exists(f"{self.base}/state.bin"):
            return False
        directory.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            if name == HISTORY and not self.storage.exists(f"{self.base}/{name}"):
                continue  # mirrored before tables kept a history: the picture starts here
            self.storage.write_bytes(
                str(directory / name), self.storage.read_bytes(f"{self.base}/{name}")
            )
        return True

    def push(self, directory: Path) -> None:
        """Put the current ``table.json`` and snapshot (each an atomic replace)."""
        for name in FILES:
            self.storage.write_bytes(f"{self.base}/{name}", (directory / name).read_bytes())
