"""The base project: copied from a directory, or an ``s3://`` / ``gs://`` prefix."""

from __future__ import annotations

import shutil
from pathlib import Path

from sluice.errors import SluiceInputError
from sluice.storage import Storage, StorageError, is_remote


def _remote(source: str) -> bool:
    try:
        return is_remote(source)
    except StorageError as error:
        raise SluiceInputError(f"base project {source!r}: {error}") from None


def check_base(source: str) -> None:
    """SluiceInputError unless a directory base exists (object storage is checked while
    downloading)."""
    if _remote(source):
        if not source.split("://", 1)[1].split("/", 1)[0]:
            raise SluiceInputError(f"base project {source!r}: no bucket in the URL")
    elif not Path(source).is_dir():
        raise SluiceInputError(f"base project {source!r}: no such directory")


def fetch_base(source: str, dest: Path, *, storage: Storage | None = None) -> None:
    """Fill ``dest`` (which must not exist) with the base project from ``source``
    (symbolic links in a local base are kept; object storage through ``storage``)."""
    check_base(source)
    if not _remote(source):
        shutil.copytree(source, dest, symlinks=True)
        return
    try:
        (storage or Storage()).copy(source.rstrip("/"), str(dest))
    except FileNotFoundError:
        raise SluiceInputError(f"base project {source!r}: no objects under that prefix") from None
    except StorageError as error:
        raise SluiceInputError(f"base project {source!r}: {error}") from None
    if not dest.is_dir():  # the prefix named one object, not a folder
        dest.unlink()
        raise SluiceInputError(f"base project {source!r}: a single object, not a prefix")
