"""Where a STAC batch writes: a local directory or ``s3://bucket/prefix``.

S3 goes through prefect-aws ``S3Bucket`` with ``AwsCredentials``. Credentials
come from the caller's environment (``--use-local-creds``), from a saved
``AwsCredentials`` block, or from boto3's default chain; they are never put
into a job's spec or meta (see ``job_credentials``).
"""

from __future__ import annotations

import os
import uuid
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pydantic import SecretStr

from sluice.errors import SluiceInputError

if TYPE_CHECKING:
    from prefect_aws import AwsCredentials

CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def resolve_credentials(use_local_creds: bool, block_name: str | None) -> AwsCredentials:
    """The AWS credentials of a batch, or a one-line error naming what is missing."""
    from prefect_aws import AwsCredentials

    if use_local_creds:
        missing = [v for v in CREDENTIAL_VARIABLES[:2] if not os.environ.get(v)]
        if missing:
            raise SluiceInputError(
                f"--use-local-creds: {' and '.join(missing)} not set in the environment"
            )
        return AwsCredentials(
            aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=SecretStr(os.environ["AWS_SECRET_ACCESS_KEY"]),
            aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
    if block_name:
        from sluice.server import load_block

        return load_block(AwsCredentials, block_name, "--aws_credentials_block")
    return AwsCredentials()


def job_credentials(credentials: AwsCredentials) -> dict[str, str]:
    """The secret environment a job needs to reach S3 (only for the backend's secret channel)."""
    secret = credentials.aws_secret_access_key
    values = {
        "AWS_ACCESS_KEY_ID": credentials.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret.get_secret_value() if secret else None,
        "AWS_SESSION_TOKEN": credentials.aws_session_token,
    }
    return {k: v for k, v in values.items() if v}


def secret_values(credentials: AwsCredentials | None) -> list[str]:
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
    """A local directory or S3 prefix: ``url`` makes addresses; ``write``, ``read`` move bytes."""

    def __init__(self, root: str, credentials: AwsCredentials | None = None) -> None:
        self.root = root.rstrip("/")
        parsed = urlparse(self.root)
        self.is_s3 = parsed.scheme == "s3"
        if self.is_s3:
            if not parsed.netloc:
                raise SluiceInputError(f"--output_root {root!r}: no bucket in the S3 URL")
            self.bucket_name, self.prefix = parsed.netloc, parsed.path.strip("/")
        elif parsed.scheme not in ("", "file"):
            raise SluiceInputError(f"--output_root {root!r}: expected s3://bucket/prefix or a path")
        self.credentials = credentials

    @cached_property
    def _bucket(self) -> Any:
        """prefect-aws ``S3Bucket`` with the batch's credentials; jobs (no credentials
        given) use boto3's default chain and skip importing Prefect."""
        if self.credentials is None:
            return _Boto3Bucket(self.bucket_name)
        from prefect_aws.s3 import S3Bucket

        return S3Bucket(bucket_name=self.bucket_name, credentials=self.credentials)

    def url(self, *parts: str) -> str:
        """The absolute address of ``parts`` under the root."""
        return "/".join([self.root, *parts])

    def _key(self, relative: str) -> str:
        return "/".join(p for p in (self.prefix, relative) if p)

    def write(self, relative: str, data: bytes) -> str:
        """Write ``data`` at ``relative``; its absolute address."""
        if self.is_s3:
            self._bucket.write_path(self._key(relative), data)
        else:
            path = Path(self.root.removeprefix("file://"), relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return self.url(relative)

    def read(self, relative: str) -> bytes:
        if self.is_s3:
            return self._bucket.read_path(self._key(relative))
        return Path(self.root.removeprefix("file://"), relative).read_bytes()

    def _delete_object(self, key: str) -> None:  # S3Bucket has no delete
        if self.credentials is None:
            self._bucket._client.delete_object(Bucket=self.bucket_name, Key=key)
        else:
            self.credentials.get_s3_client().delete_object(Bucket=self.bucket_name, Key=key)

    def check_writable(self) -> None:
        """Write and remove a probe object; a one-line error if that fails."""
        probe = f".sluice-probe-{uuid.uuid4().hex}"
        try:
            self.write(probe, b"")
            if self.is_s3:
                self._delete_object(self._key(probe))
            else:
                Path(self.root.removeprefix("file://"), probe).unlink()
        except Exception as exc:  # any storage fault means "not writable"
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SluiceInputError(f"--output_root {self.root!r}: not writable ({reason})") from exc


class _Boto3Bucket:
    """The two ``S3Bucket`` calls job commands need, on a plain boto3 client."""

    def __init__(self, bucket_name: str) -> None:
        import boto3

        self.bucket_name = bucket_name
        self._client = boto3.client("s3")

    def read_path(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self.bucket_name, Key=key)["Body"].read()

    def write_path(self, key: str, content: bytes) -> None:
        self._client.put_object(Bucket=self.bucket_name, Key=key, Body=content)


def split_url(url: str) -> tuple[StorageRoot, str]:
    """An absolute address as (storage root, relative path): ``s3://b/k`` or a file path."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        return StorageRoot(f"s3://{parsed.netloc}"), parsed.path.lstrip("/")
    path = Path(url.removeprefix("file://"))
    return StorageRoot(str(path.parent)), path.name


def read_url(url: str) -> bytes:
    """Read an absolute address with the environment's credentials (for job commands)."""
    root, relative = split_url(url)
    return root.read(relative)


def write_url(url: str, data: bytes) -> None:
    """Write an absolute address with the environment's credentials (for job commands)."""
    root, relative = split_url(url)
    root.write(relative, data)
