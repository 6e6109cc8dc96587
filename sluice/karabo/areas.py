"""Ingestor areas (staging, processed, failed): a local directory, ``s3://`` or ``gs://`` prefix.

Paths inside an area are ``<namespace>/<file>``; a product may be a file or a
directory tree (a measurement set). Every write goes through ``sluice.storage`` and is
atomic for a reader that lists the area: local files and trees are written under a
hidden temporary name and renamed; objects appear only when their upload completes.
"""

from __future__ import annotations

from pathlib import Path

from sluice.errors import SluiceInputError
from sluice.storage import SCHEMES, Storage, StorageError, join, scheme_of


class Area:
    """One ingestor area at ``url``, read and written through ``storage``."""

    def __init__(self, url: str, storage: Storage | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage = storage or Storage()

    def _at(self, rel: str) -> str:
        return join(self.url, rel)

    def check(self, *, what: str, writable: bool) -> None:
        """One ``SluiceInputError`` line unless the area exists (and takes writes)."""
        try:
            self.storage.check_folder(self.url, writable=writable)
        except FileNotFoundError:
            remote = "://" in self.url and not self.url.startswith("file://")
            problem = "does not exist" if remote else "does not exist or is not a directory"
            raise SluiceInputError(f"{what}: {self.url} {problem}") from None
        except StorageError as error:
            reason = str(error).removeprefix(f"{self.url}: ")
            raise SluiceInputError(f"{what}: {self.url} is not writable ({reason})") from None

    def has(self, rel: str) -> bool:
        return self.storage.exists(self._at(rel))

    def read(self, rel: str) -> bytes:
        return self.storage.read_bytes(self._at(rel))

    def put_bytes(self, rel: str, data: bytes) -> None:
        self.storage.write_bytes(self._at(rel), data)

    def put_path(self, rel: str, source: Path) -> None:
        """Place the local file or tree ``source`` at ``rel``, replacing what is there."""
        self.storage.copy(str(source), self._at(rel))

    def list_meta(self) -> list[str]:
        """Every ``.meta`` file of the area (hidden names skipped), relative, sorted."""
        lead = len(self.url) + 1
        return sorted(
            url[lead:]
            for url in self.storage.list(self.url)
            if url.endswith(".meta") and not url.rsplit("/", 1)[-1].startswith(".")
        )

    def move(self, rel: str, to: Area) -> None:
        self.storage.move(self._at(rel), to._at(rel))

    def remove(self, rel: str) -> None:
        self.storage.delete(self._at(rel))


def open_area(url: str, *, storage: Storage | None = None) -> Area:
    """A local path, ``file://``, ``s3://bucket/prefix`` or ``gs://bucket/prefix``;
    object storage uses ``storage``'s credentials (default: each store's own chain)."""
    try:
        scheme = scheme_of(url)
    except StorageError:
        scheme = None
    if scheme not in SCHEMES:
        raise SluiceInputError(f"area {url!r}: use a local path, s3:// or gs://bucket/prefix")
    if scheme in ("s3", "gs") and not url.split("://", 1)[1].split("/", 1)[0]:
        raise SluiceInputError(f"area {url!r}: needs a bucket ({scheme}://bucket/prefix)")
    if not scheme:
        url = str(Path(url).expanduser())
    return Area(url, storage)
