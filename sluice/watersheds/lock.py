"""One running flow per batch: a lock file naming its owner, taken over when the owner is dead."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from sluice.errors import SluiceInputError
from sluice.watersheds.batch import read_json_object, utcnow


def _owner() -> dict[str, object]:
    me = psutil.Process()
    return {
        "pid": me.pid,
        "host": socket.gethostname(),
        "create_time": me.create_time(),
        "started_at": utcnow().isoformat(),
    }


def _alive(owner: dict[str, Any]) -> bool:
    """Whether the lock's owner still runs (on another host: assume it does)."""
    if not owner:
        return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        process = psutil.Process(int(owner["pid"]))
        return abs(process.create_time() - float(owner["create_time"])) < 1.0
    except (psutil.NoSuchProcess, KeyError, TypeError, ValueError):
        return False


@contextlib.contextmanager
def _takeover_guard(path: Path) -> Iterator[None]:
    """``flock`` on the lock's directory while taking the lock, so two processes that both
    find a dead owner cannot each remove the lock the other has just taken."""
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def batch_lock(path: Path, batch: str) -> Iterator[None]:
    """Hold ``path`` while the batch runs; SluiceInputError if a live owner holds it."""
    owner = _owner()
    staged = path.with_name(f".{path.name}.{owner['pid']}")
    staged.write_text(json.dumps(owner), encoding="utf-8")
    try:
        with _takeover_guard(path):
            for _ in range(2):
                try:
                    os.link(staged, path)  # atomic: the lock appears with its owner already written
                    break
                except FileExistsError:
                    holder = read_json_object(path)
                    if _alive(holder):
                        raise SluiceInputError(
                            f"batch {batch!r}: already running (pid {holder.get('pid')} on "
                            f"{holder.get('host')} since {holder.get('started_at')}; "
                            f"lock {str(path)!r})"
                        ) from None
                    path.unlink(missing_ok=True)
            else:
                raise SluiceInputError(f"batch {batch!r}: could not take the lock {str(path)!r}")
    finally:
        staged.unlink(missing_ok=True)
    try:
        yield
    finally:
        if read_json_object(path).get("pid") == owner["pid"]:
            path.unlink(missing_ok=True)
