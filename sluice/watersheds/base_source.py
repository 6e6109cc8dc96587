"""The base project: copied from a directory or downloaded from an S3 prefix."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from sluice.errors import SluiceInputError


def parse_s3(source: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix ending in ``/`` or empty)."""
    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    if not bucket:
        raise SluiceInputError(f"base project {source!r}: no bucket in the S3 URL")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _download_prefix(client: Any, source: str, dest: Path) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = parse_s3(source)
    count = 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                relative = PurePosixPath(entry["Key"][len(prefix) :])
                if not relative.parts or ".." in relative.parts or entry["Key"].endswith("/"):
                    continue
                target = dest.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, entry["Key"], str(target))
                count += 1
    except (BotoCoreError, ClientError) as exc:
        raise SluiceInputError(f"base project {source!r}: {exc}") from None
    return count


def check_base(source: str) -> None:
    """SluiceInputError unless a directory base exists (S3 is checked while downloading)."""
    if not source.startswith("s3://") and not Path(source).is_dir():
        raise SluiceInputError(f"base project {source!r}: no such directory")


def fetch_base(source: str, dest: Path, *, s3_client: Any = None) -> None:
    """Fill ``dest`` (which must not exist) with the base project from ``source``."""
    check_base(source)
    if not source.startswith("s3://"):
        shutil.copytree(source, dest, symlinks=True)
        return
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    dest.mkdir(parents=True)
    if not _download_prefix(s3_client, source, dest):
        shutil.rmtree(dest)
        raise SluiceInputError(f"base project {source!r}: no objects under that prefix")
