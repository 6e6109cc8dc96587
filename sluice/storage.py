"""One storage layer for local paths, ``file://``, ``s3://`` and ``gs://``.

Every flow that reads or writes files that may live in object storage goes through
:class:`Storage` (today: the ChunkedGraph watershed ``info`` reader; Karabo areas, STAC
outputs and the watershed base source are meant to move onto it)::

    from sluice.storage import Storage

    storage = Storage(aws=AwsCredentials.load("lab-s3"))     # or gcp=GcpCredentials.load(...)
    text = storage.read_text("gs://bucket/ws/info")
    storage.write_bytes("s3://bucket/run/state.bin", data)    # atomic: old or new, never half
    storage.list("s3://bucket/run/segments/")                 # full URLs, sorted
    storage.exists(url); storage.delete(url)
    storage.resolve("file://./ws", base=Path("/data"))        # relative local -> absolute

URLs: a plain path (absolute, or relative to the working directory / ``resolve``'s
``base``), ``file:///abs``, ``file://./rel``, ``s3://bucket/key``, ``gs://bucket/key``;
anything else is refused with :class:`StorageError`. A missing object or file raises
``FileNotFoundError``; any other failure (no permission, unreachable endpoint, no such
bucket) raises :class:`StorageError`, whose message is one line naming the URL.

Atomicity: ``write_bytes`` replaces the whole file or object or leaves the old one. Local
files are written to a temporary file beside the target, fsynced and renamed over it; S3
and GCS objects become visible only when their upload completes (a single PUT, or a
multipart/resumable upload finalised at once), so readers never see a partial object.

Credentials come only from blocks passed in by the caller, never from the orchestrator's
``os.environ`` being changed:

- ``aws``: a prefect-aws ``AwsCredentials`` block. Keys, session token, profile, region
  and assumed roles are resolved through the block's own boto3 session; its
  ``aws_client_parameters`` (``endpoint_url``, ``verify``, ``use_ssl``, ``config``) apply.
  Without a block, s3fs uses botocore's default chain (instance role, ``~/.aws``, the
  process's existing ``AWS_*`` variables).
- ``gcp``: a prefect-gcp ``GcpCredentials`` block (service account info or file, project).
  Without a block, gcsfs uses Google's default credentials, else anonymous access (public
  buckets, as most neuroglancer precomputed layers are). gcsfs honours
  ``STORAGE_EMULATOR_HOST`` for a local emulator.

Built on fsspec: s3fs for S3, gcsfs's plain JSON-API ``GCSFileSystem`` for GCS (not the
package's default experimental class, which first asks the gRPC control plane for the
bucket's layout: a 60 s timeout against anything but Google itself).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from prefect.blocks.core import Block
    from prefect_aws import AwsCredentials
    from prefect_gcp import GcpCredentials

REMOTE_SCHEMES = ("s3", "gs")
SCHEMES = ("", "file", *REMOTE_SCHEMES)


class StorageError(OSError):
    """A storage operation failed for a reason other than a missing file; one line."""


def scheme_of(url: str) -> str:
    """``s3``, ``gs``, ``file`` or ``""`` (plain path); :class:`StorageError` otherwise."""
    scheme = urlparse(url).scheme if "://" in url else ""
    if scheme not in SCHEMES:
        raise StorageError(
            f"{url}: scheme {scheme}:// is not supported (local, file://, s3://, gs://)"
        )
    return scheme


def _local(url: str) -> Path:
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    return Path(url)


def _message(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return (text or type(error).__name__)[:300]


class Storage:
    """Read, write, list, test and delete files by URL; see the module docstring."""

    def __init__(
        self, *, aws: AwsCredentials | None = None, gcp: GcpCredentials | None = None
    ) -> None:
        self._aws, self._gcp = aws, gcp
        self._filesystems: dict[str, AbstractFileSystem] = {}

    def resolve(self, url: str, base: Path | None = None) -> str:
        """``url`` with a relative local path made absolute against ``base`` (or the cwd)."""
        if scheme_of(url) in REMOTE_SCHEMES:
            return url
        path = _local(url)
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        return str(path)

    def read_bytes(self, url: str) -> bytes:
        if scheme_of(url) in REMOTE_SCHEMES:
            with self._remote(url) as (fs, path):
                return fs.cat_file(path)
        return _local(url).read_bytes()

    def read_text(self, url: str) -> str:
        return self.read_bytes(url).decode()

    def write_bytes(self, url: str, data: bytes) -> None:
        """Replace ``url`` with ``data`` atomically (see the module docstring)."""
        if scheme_of(url) in REMOTE_SCHEMES:
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
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def write_text(self, url: str, text: str) -> None:
        self.write_bytes(url, text.encode())

    def exists(self, url: str) -> bool:
        if scheme_of(url) in REMOTE_SCHEMES:
            with self._remote(url) as (fs, path):
                return fs.exists(path)
        return _local(url).exists()

    def list(self, prefix: str) -> list[str]:
        """Every file under the folder ``prefix``, as full URLs in the same form, sorted."""
        scheme = scheme_of(prefix)
        if scheme in REMOTE_SCHEMES:
            with self._remote(prefix) as (fs, path):
                return sorted(f"{scheme}://{found}" for found in fs.find(path))
        root = _local(prefix)
        lead = "file://" if scheme == "file" else ""
        if not root.is_dir():
            return []
        return sorted(f"{lead}{found}" for found in root.rglob("*") if found.is_file())

    def delete(self, url: str) -> None:
        """Remove one file or object; a missing one is not an error."""
        if scheme_of(url) in REMOTE_SCHEMES:
            with self._remote(url) as (fs, path), contextlib.suppress(FileNotFoundError):
                fs.rm_file(path)
            return
        _local(url).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _remote(self, url: str):
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
            builder = _s3 if scheme == "s3" else _gs
            self._filesystems[scheme] = builder(self._aws if scheme == "s3" else self._gcp)
        return self._filesystems[scheme]


def _s3(aws: AwsCredentials | None) -> AbstractFileSystem:
    from s3fs import S3FileSystem

    options: dict[str, Any] = {"skip_instance_cache": True}
    if aws is not None:
        session = aws.get_boto3_session()  # keys, profile or assumed role, via the block
        frozen = session.get_credentials()
        if frozen is not None:
            frozen = frozen.get_frozen_credentials()
            options.update(key=frozen.access_key, secret=frozen.secret_key, token=frozen.token)
        client_kwargs = aws.aws_client_parameters.get_params_override()
        config = client_kwargs.pop("config", None)
        if session.region_name:
            client_kwargs["region_name"] = session.region_name
        if endpoint := client_kwargs.pop("endpoint_url", None):
            options["endpoint_url"] = endpoint
        options["client_kwargs"] = client_kwargs
        if config is not None:
            options["config_kwargs"] = dict(aws.aws_client_parameters.config or {})
    return S3FileSystem(**options)


def _gs(gcp: GcpCredentials | None) -> AbstractFileSystem:
    from gcsfs.core import GCSFileSystem

    if gcp is None:
        return GCSFileSystem(skip_instance_cache=True)
    return GCSFileSystem(
        token=gcp.get_credentials_from_service_account(),
        project=gcp.project or "",
        skip_instance_cache=True,
    )


def storage_from_blocks(aws_block: str | None = None, gcp_block: str | None = None) -> Storage:
    """A :class:`Storage` with the named ``AwsCredentials`` / ``GcpCredentials`` blocks.

    Call once the Prefect API is known; a block that does not exist is one
    ``SluiceInputError`` line naming it.
    """
    from sluice.errors import SluiceInputError

    loaded: dict[str, Any] = {}
    for key, name, kind in (
        ("aws", aws_block, "AwsCredentials"),
        ("gcp", gcp_block, "GcpCredentials"),
    ):
        if name is None:
            continue
        block_type: type[Block]
        if key == "aws":
            from prefect_aws import AwsCredentials

            block_type = AwsCredentials
        else:
            from prefect_gcp import GcpCredentials

            block_type = GcpCredentials
        try:
            loaded[key] = block_type.load(name)
        except ValueError:
            raise SluiceInputError(f"{kind} block {name!r}: no such block") from None
    return Storage(**loaded)
