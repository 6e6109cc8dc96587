"""One storage layer for local paths, ``file://``, ``s3://`` and ``gs://``.

Every flow that reads or writes files that may live in object storage goes through
:class:`Storage`: the ChunkedGraph ``info`` reader and state mirror, Karabo's ingestor
areas, STAC batch outputs and the watershed base project::

    from sluice.storage import S3Settings, Storage

    storage = Storage(s3=S3Settings(access_key_id=..., secret_access_key=...))
    text = storage.read_text("gs://bucket/ws/info")
    storage.write_bytes("s3://bucket/run/state.bin", data)    # atomic: old or new, never half
    storage.list("s3://bucket/run/segments/")                 # full URLs, sorted
    storage.exists(url); storage.delete(url)                  # a file or a whole folder
    storage.copy("s3://bucket/base", "/scratch/base")         # a file or a folder, any schemes
    storage.move(url, other)                                  # copy, then delete the source
    storage.check_folder("s3://bucket/staging", writable=True)
    storage.resolve("file://./ws", base=Path("/data"))        # relative local -> absolute

URLs: a plain path (absolute, or relative to the working directory / ``resolve``'s
``base``), ``file:///abs``, ``file://./rel``, ``s3://bucket/key``, ``gs://bucket/key``;
anything else is refused with :class:`StorageError`. A missing object or file raises
``FileNotFoundError``; any other failure (no permission, unreachable endpoint, no such
bucket) raises :class:`StorageError`, whose message is one line naming the URL.

Atomicity: ``write_bytes`` (and ``copy`` onto a local file or folder) replaces the whole
file or folder or leaves the old one: local targets are written under a hidden temporary
name beside the target (``.<name>.<random>``), fsynced and renamed over it. S3 and GCS
objects become visible only when their upload completes (a single PUT, or a
multipart/resumable upload finalised at once), so readers never see a partial object; a
folder copied to object storage appears object by object.

Credentials are plain settings (:class:`S3Settings`, :class:`GcsSettings`, secrets as
``SecretStr``), never read from Prefect here: a flow turns its prefect-aws /
prefect-gcp credential blocks into them (``sluice.blocks.storage``) and hands them down.
Without settings, s3fs uses botocore's default chain (instance role, ``~/.aws``, the
process's ``AWS_*`` variables, ``AWS_ENDPOINT_URL``) and gcsfs Google's default
credentials, else anonymous access (public buckets, as most neuroglancer precomputed
layers are); gcsfs honours ``STORAGE_EMULATOR_HOST`` for a local emulator.

Built on fsspec: s3fs for S3, gcsfs's plain JSON-API ``GCSFileSystem`` for GCS (not the
package's default experimental class, which first asks the gRPC control plane for the
bucket's layout: a 60 s timeout against anything but Google itself). Listings are never
cached: other processes (ingestors, jobs) write the same folders.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

REMOTE_SCHEMES = ("s3", "gs")
SCHEMES = ("", "file", *REMOTE_SCHEMES)


class StorageError(OSError):
    """A storage operation failed for a reason other than a missing file; one line."""


class S3Settings(BaseModel):
    """How to reach S3: keys (secrets as ``SecretStr``), region, endpoint, client options.

    Every field empty means botocore's default chain."""

    model_config = ConfigDict(frozen=True)

    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    region: str | None = None
    endpoint_url: str | None = None
    client_kwargs: dict[str, Any] = Field(default_factory=dict, description="verify, use_ssl")
    config_kwargs: dict[str, Any] = Field(default_factory=dict, description="botocore Config")

    @classmethod
    def from_environment(cls) -> S3Settings:
        """The keys in this process's ``AWS_*`` variables (for ``--use-local-creds``)."""
        secret, token = os.environ.get("AWS_SECRET_ACCESS_KEY"), os.environ.get("AWS_SESSION_TOKEN")
        return cls(
            access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=SecretStr(secret) if secret else None,
            session_token=SecretStr(token) if token else None,
            region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        )


class GcsSettings(BaseModel):
    """How to reach GCS: a service account's key (JSON, secret) and the project.

    No key means Google's default credentials, else anonymous access."""

    model_config = ConfigDict(frozen=True)

    service_account_info: SecretStr | None = None
    project: str | None = None


def reveal(secret: SecretStr | None) -> str | None:
    """The secret's value, or None."""
    return secret.get_secret_value() if secret else None


def scheme_of(url: str) -> str:
    """``s3``, ``gs``, ``file`` or ``""`` (plain path); :class:`StorageError` otherwise."""
    scheme = urlparse(url).scheme if "://" in url else ""
    if scheme not in SCHEMES:
        raise StorageError(
            f"{url}: scheme {scheme}:// is not supported (local, file://, s3://, gs://)"
        )
    return scheme


def is_remote(url: str) -> bool:
    """Whether ``url`` names object storage (``s3://``, ``gs://``)."""
    return scheme_of(url) in REMOTE_SCHEMES


def join(url: str, *parts: str) -> str:
    """``url`` with ``parts`` appended, ``/``-separated (empty parts skipped)."""
    return "/".join([url.rstrip("/"), *(p.strip("/") for p in parts if p.strip("/"))])


def _local(url: str) -> Path:
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    return Path(url)


def _message(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return (text or type(error).__name__)[:300]


def _temp_beside(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _remove_local(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class Storage:
    """Read, write, list, test, copy and delete files by URL; see the module docstring."""

    def __init__(self, *, s3: S3Settings | None = None, gcs: GcsSettings | None = None) -> None:
        self.s3, self.gcs = s3 or S3Settings(), gcs or GcsSettings()
        self._filesystems: dict[str, AbstractFileSystem] = {}

    def resolve(self, url: str, base: Path | None = None) -> str:
        """``url`` with a relative local path made absolute against ``base`` (or the cwd)."""
        if is_remote(url):
            return url
        path = _local(url)
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        return str(path)

    def read_bytes(self, url: str) -> bytes:
        if is_remote(url):
            with self._remote(url) as (fs, path):
                return fs.cat_file(path)
        return _local(url).read_bytes()

    def read_text(self, url: str) -> str:
        return self.read_bytes(url).decode()

    def write_bytes(self, url: str, data: bytes) -> None:
        """Replace ``url`` with ``data`` atomically (see the module docstring)."""
        if is_remote(url):
            with self._remote(url) as (fs, path):
                fs.pipe_file(path, data)
            return
        target = _local(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_directory(target.parent)

    def write_text(self, url: str, text: str) -> None:
        self.write_bytes(url, text.encode())

    def exists(self, url: str) -> bool:
        """Whether ``url`` is a file, or a folder (prefix) holding at least one."""
        if is_remote(url):
            with self._remote(url) as (fs, path):
                return fs.exists(path)
        return _local(url).exists()

    def list(self, prefix: str) -> list[str]:
        """Every file under the folder ``prefix``, as full URLs in the same form, sorted."""
        scheme = scheme_of(prefix)
        if scheme in REMOTE_SCHEMES:
            with self._remote(prefix) as (fs, path):
                return sorted(f"{scheme}://{found}" for found in fs.find(path.rstrip("/")))
        root = _local(prefix)
        lead = "file://" if scheme == "file" else ""
        if not root.is_dir():
            return []
        return sorted(f"{lead}{found}" for found in root.rglob("*") if found.is_file())

    def delete(self, url: str) -> None:
        """Remove the file, or the whole folder, at ``url``; a missing one is not an error.

        Object storage deletes a folder's objects in batches (one request per 1,000)."""
        if is_remote(url):
            with self._remote(url) as (fs, path):
                if "/" not in path.strip("/"):  # a bucket, not a folder or file in one
                    raise StorageError(f"{url}: refusing to delete a whole bucket")
                with contextlib.suppress(FileNotFoundError):
                    fs.rm(path.rstrip("/"), recursive=True)
            return
        _remove_local(_local(url))

    def copy(self, source: str, target: str) -> int:
        """Copy the file or folder ``source`` to ``target`` (replaced); the files copied.

        Any schemes on either side. A local target appears at once, complete (a temporary
        sibling renamed over it); an object-storage target object by object. A missing
        source (or an empty folder) raises ``FileNotFoundError``."""
        files = self._files(source)
        if not files:
            raise FileNotFoundError(f"{source}: no such file or folder")
        if not is_remote(target):
            final = _local(target)
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = _temp_beside(final)
            try:
                self._copy_files(files, str(temp))
                _remove_local(final)
                temp.rename(final)
            finally:
                _remove_local(temp)
            _fsync_directory(final.parent)
            return len(files)
        inside = target.rstrip("/") + "/"
        if source.rstrip("/") + "/" == inside or source.startswith(inside):
            raise StorageError(f"{target}: a copy of {source} would replace its own source")
        self.delete(target)
        self._copy_files(files, target)
        return len(files)

    def move(self, source: str, target: str) -> None:
        """Move the file or folder ``source`` to ``target`` (replaced): a rename when both
        are local, else a copy and then the source's deletion."""
        if not is_remote(source) and not is_remote(target):
            final = _local(target)
            final.parent.mkdir(parents=True, exist_ok=True)
            _remove_local(final)
            shutil.move(_local(source), final)
            return
        self.copy(source, target)
        self.delete(source)

    def check_folder(self, url: str, *, writable: bool) -> None:
        """``FileNotFoundError`` unless the folder (or its bucket) exists; with ``writable``,
        :class:`StorageError` unless a probe file can be written and removed there."""
        if is_remote(url):
            with self._remote(url) as (fs, path):
                if not fs.exists(path.split("/", 1)[0]):
                    raise FileNotFoundError(f"{url}: no such bucket")
        elif not _local(url).is_dir():
            raise FileNotFoundError(f"{url}: not a directory")
        if writable:
            probe = join(url, f".sluice-probe-{uuid.uuid4().hex[:8]}")
            try:
                self.write_bytes(probe, b"")
                self.delete(probe)
            except FileNotFoundError as error:  # a bucket that refuses writes may say so
                raise StorageError(f"{url}: {_message(error)}") from None
            except OSError as error:
                if isinstance(error, StorageError):
                    raise
                raise StorageError(f"{url}: {error.strerror or _message(error)}") from None

    def _files(self, source: str) -> builtins.list[tuple[str, str]]:
        """(URL, path relative to ``source``: empty for a file) of every file of ``source``."""
        if is_remote(source):
            with self._remote(source) as (fs, path):
                path = path.rstrip("/")
                found = fs.find(path, withdirs=False)
            scheme = scheme_of(source)
            pairs = []
            for key in found:
                relative = PurePosixPath(key[len(path) :].lstrip("/"))
                if key != path and (not key.startswith(f"{path}/") or ".." in relative.parts):
                    continue
                if key.endswith("/"):  # a "folder" marker object
                    continue
                pairs.append((f"{scheme}://{key}", "" if key == path else relative.as_posix()))
            return sorted(pairs)
        root = _local(source)
        if root.is_file():
            return [(str(root), "")]
        if not root.is_dir():
            return []
        return sorted(
            (str(p), p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file()
        )

    def _copy_files(self, files: builtins.list[tuple[str, str]], target: str) -> None:
        for url, relative in files:
            destination = join(target, relative) if relative else target
            if not is_remote(url) and not is_remote(destination):
                Path(destination).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(url, destination)
            elif not is_remote(url):
                with self._remote(destination) as (fs, path):
                    fs.put_file(url, path)
            elif not is_remote(destination) or scheme_of(url) != scheme_of(destination):
                self._download(url, destination)
            else:
                with self._remote(url) as (fs, path), self._remote(destination) as (_, to):
                    fs.copy(path, to)

    def _download(self, url: str, destination: str) -> None:
        if is_remote(destination):
            self.write_bytes(destination, self.read_bytes(url))
            return
        Path(destination).parent.mkdir(parents=True, exist_ok=True)
        with self._remote(url) as (fs, path):
            fs.get_file(path, destination)

    @contextlib.contextmanager
    def _remote(self, url: str) -> Iterator[tuple[AbstractFileSystem, str]]:
        """The filesystem and bucket/key path for ``url``; errors become one line."""
        parsed = urlparse(url)
        if not parsed.netloc:
            raise StorageError(f"{url}: no bucket")
        try:
            yield self._filesystem(parsed.scheme), f"{parsed.netloc}{parsed.path}"
        except FileNotFoundError:
            raise
        except StorageError:
            raise
        except Exception as error:  # botocore, aiohttp, google-auth: one line naming the URL
            raise StorageError(f"{url}: {_message(error)}") from None

    def _filesystem(self, scheme: str) -> AbstractFileSystem:
        if scheme not in self._filesystems:
            self._filesystems[scheme] = _s3(self.s3) if scheme == "s3" else _gs(self.gcs)
        return self._filesystems[scheme]


def _s3(settings: S3Settings) -> AbstractFileSystem:
    from s3fs import S3FileSystem

    options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
    if settings.access_key_id:
        options.update(
            key=settings.access_key_id,
            secret=reveal(settings.secret_access_key),
            token=reveal(settings.session_token),
        )
    client_kwargs = dict(settings.client_kwargs)
    if settings.region:
        client_kwargs["region_name"] = settings.region
    if settings.endpoint_url:
        options["endpoint_url"] = settings.endpoint_url
    options["client_kwargs"] = client_kwargs
    if settings.config_kwargs:
        options["config_kwargs"] = dict(settings.config_kwargs)
    return S3FileSystem(**options)


def _gs(settings: GcsSettings) -> AbstractFileSystem:
    from gcsfs.core import GCSFileSystem

    options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
    if settings.service_account_info is not None:
        options["token"] = json.loads(settings.service_account_info.get_secret_value())
    if settings.project:
        options["project"] = settings.project
    return GCSFileSystem(**options)
