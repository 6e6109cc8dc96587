"""Output locations checked before anything runs: a directory that is, or can be, made."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sluice.errors import SluiceInputError
from sluice.names import DIRECTORY


def check_directory(path: str | Path, what: str) -> Path:
    """``path`` as a ``Path`` if it is a writable directory or this process can create it
    (checked, not made); else one line naming ``what``. The one check of every output
    directory a user names (reports, scratch, batch roots, temp dirs)."""
    directory = Path(DIRECTORY.check(str(path), what))
    if directory.exists():
        if not directory.is_dir():
            raise SluiceInputError(f"{what}: {directory} exists and is not a directory")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise SluiceInputError(f"{what}: {directory} is not writable")
        return directory
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        if parent.is_symlink():
            raise SluiceInputError(
                f"{what}: {directory} cannot be created ({parent} is a broken symlink)"
            )
        parent = parent.parent
    if directory.is_symlink():
        raise SluiceInputError(f"{what}: {directory} is a broken symlink")
    if not parent.is_dir():
        raise SluiceInputError(
            f"{what}: {directory} cannot be created ({parent} is not a directory)"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SluiceInputError(f"{what}: {directory} cannot be created ({parent} is not writable)")
    return directory


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def case_insensitive(directory: Path) -> bool:
    """Whether names differing only in case are one file where ``directory`` is (or would be).

    Probed with a temporary file in the nearest existing directory, removed at once; a
    directory this process cannot write to counts as case-sensitive.
    """
    where = nearest_existing(directory)
    try:
        with tempfile.NamedTemporaryFile(prefix=".Sluice-Case-Probe-", dir=where) as probe:
            name = Path(probe.name)
            return (name.parent / name.name.swapcase()).exists()
    except OSError:
        return False
