"""Output locations checked before anything runs: a directory that is, or can be, made."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sluice.errors import SluiceInputError


def check_directory(path: Path, what: str) -> None:
    """``path`` is a writable directory, or this process can create it (checked, not made)."""
    if path.exists():
        if not path.is_dir():
            raise SluiceInputError(f"{what}: {path} exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise SluiceInputError(f"{what}: {path} is not writable")
        return
    parent = nearest_existing(path.parent)
    if not parent.is_dir():
        raise SluiceInputError(f"{what}: {path} cannot be created ({parent} is not a directory)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SluiceInputError(f"{what}: {path} cannot be created ({parent} is not writable)")


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
