"""Reading a user-named input file safely: one clear line for anything but small text.

A FIFO, device, directory or socket is refused without blocking (the file is opened
non-blocking and checked with ``fstat`` before any read), the size is bounded before
reading, and binary content (NUL bytes, invalid UTF-8) is refused by name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sluice.errors import SluiceInputError
from sluice.quantity import shown


def read_text_file(path: str | Path, *, what: str, max_bytes: int) -> str:
    """The text of ``path``, or ``SluiceInputError`` naming ``what`` and the path."""
    named = f"{what} {shown(str(path), 120)}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError) as exc:
        raise SluiceInputError(f"{named}: cannot read ({_reason(exc)})") from None
    info = os.fstat(fd)
    problem = None
    if stat.S_ISDIR(info.st_mode):
        problem = "is a directory, not a file"
    elif not stat.S_ISREG(info.st_mode):
        problem = "not a regular file (a FIFO, device or socket)"
    elif info.st_size > max_bytes:
        problem = f"larger than {max_bytes // 1024} KiB"
    if problem:
        os.close(fd)
        raise SluiceInputError(f"{named}: {problem}")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SluiceInputError(f"{named}: larger than {max_bytes // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SluiceInputError(f"{named}: not UTF-8 text (a binary file?)") from None
    if "\x00" in text:
        raise SluiceInputError(f"{named}: not text (it contains NUL bytes)")
    return text


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)
