"""Where a STAC batch writes: a local directory, ``s3://bucket/prefix`` or ``gs://...``.

Reads and writes go through ``sluice.storage``. S3 credentials are plain settings: from
the caller's environment (``--use-local-creds``), from an ``AwsCredentials`` block the
flow turned into settings, or botocore's default chain; they are never put into a job's
spec or meta (see ``job_credentials``).
"""

from __future__ import annotations

import os
import uuid

from sluice.errors import SluiceInputError
from sluice.storage import S3Settings, Storage, StorageError, is_remote, join, reveal

CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def resolve_credentials(use_local_creds: bool, credentials: S3Settings | None) -> S3Settings:
    """The S3 credentials of a batch, or a one-line error naming what is missing."""
    if use_local_creds:
        missing = [v for v in CREDENTIAL_VARIABLES[:2] if not os.environ.get(v)]
        if missing:
            raise SluiceInputError(
                f"--use-local-creds: {' and '.join(missing)} not set in the environment"
            )
        return S3Settings.from_environment()
    return credentials or S3Settings()


def job_credentials(credentials: S3Settings) -> dict[str, str]:
    """The secret environment a job needs to reach S3 (only for the backend's secret channel)."""
    values = {
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": reveal(credentials.secret_access_key),
        "AWS_SESSION_TOKEN": reveal(credentials.session_token),
    }
    return {k: v for k, v in values.items() if v}


def secret_values(credentials: S3Settings | None) -> list[str]:
    """Values that must never appear in a log, report or artifact."""
    if credentials is None:
        return []
    return list(job_credentials(credentials).values())


MIN_SECRET = 8  # a shorter "secret" (e.g. a test's "x") would mangle every word holding it


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value (of ``MIN_SECRET`` characters or more) as ``***``."""
    for value in secrets:
        if len(value) >= MIN_SECRET:
            text = text.replace(value, "***")
    return text


class StorageRoot:
    """A local directory or object-storage prefix: ``url`` makes addresses; ``write``,
    ``read`` move bytes (through ``sluice.storage``, with ``credentials`` for S3)."""

    def __init__(self, root: str, credentials: S3Settings | None = None) -> None:
        self.root = root.rstrip("/")
        try:
            remote = is_remote(self.root)
        except StorageError:
            raise SluiceInputError(
                f"--output_root {root!r}: expected s3://bucket/prefix, gs://bucket/prefix or a path"
            ) from None
        if remote and not self.root.split("://", 1)[1]:
            raise SluiceInputError(f"--output_root {root!r}: no bucket in the URL")
        self.credentials = credentials
        self.storage = Storage(s3=credentials)

    def url(self, *parts: str) -> str:
        """The absolute address of ``parts`` under the root."""
        return "/".join([self.root, *parts])

    def write(self, relative: str, data: bytes) -> str:
        """Write ``data`` at ``relative``; its absolute address."""
        address = self.url(relative)
        self.storage.write_bytes(address, data)
        return address

    def read(self, relative: str) -> bytes:
        return self.storage.read_bytes(self.url(relative))

    def check_writable(self) -> None:
        """Write and remove a probe object; a one-line error if that fails."""
        probe = join(self.root, f".sluice-probe-{uuid.uuid4().hex}")
        try:
            self.storage.write_bytes(probe, b"")
            self.storage.delete(probe)
        except Exception as exc:  # any storage fault means "not writable"
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SluiceInputError(f"--output_root {self.root!r}: not writable ({reason})") from exc


def read_url(url: str) -> bytes:
    """Read an absolute address with the environment's credentials (for job commands)."""
    return Storage().read_bytes(url)


def write_url(url: str, data: bytes) -> None:
    """Write an absolute address with the environment's credentials (for job commands)."""
    Storage().write_bytes(url, data)
