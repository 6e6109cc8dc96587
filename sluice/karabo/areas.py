"""Ingestor areas (staging, processed, failed): a local directory or an S3 prefix.

Paths inside an area are ``<namespace>/<file>``; a product may be a file or a
directory tree (a measurement set). Every write is atomic for a reader that
lists the area: local files and trees are written under a hidden temporary
name and renamed; S3 objects appear only when their upload completes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from sluice.errors import SluiceInputError

TEMP_MARK = ".sluice-tmp"


class Area(Protocol):
    url: str

    def check(self, *, what: str, writable: bool) -> None: ...
    def has(self, rel: str) -> bool: ...
    def read(self, rel: str) -> bytes: ...
    def put_bytes(self, rel: str, data: bytes) -> None: ...
    def put_path(self, rel: str, source: Path) -> None: ...
    def list_meta(self) -> list[str]: ...
    def move(self, rel: str, to: Area) -> None: ...
    def remove(self, rel: str) -> None: ...


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}{TEMP_MARK}")


class LocalArea:
    """A directory on a filesystem the flow can see (a mounted PVC on clusters)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def check(self, *, what: str, writable: bool) -> None:
        if not self.root.is_dir():
            raise SluiceInputError(f"{what}: {self.root} does not exist or is not a directory")
        if writable:
            probe = self.root / f".sluice-probe-{uuid.uuid4().hex[:8]}"
            try:
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as error:
                raise SluiceInputError(
                    f"{what}: {self.root} is not writable ({error.strerror})"
                ) from None

    def has(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def put_bytes(self, rel: str, data: bytes) -> None:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = _temp_name(target)
        try:
            with temp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            temp.rename(target)
        finally:
            temp.unlink(missing_ok=True)

    def put_path(self, rel: str, source: Path) -> None:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = _temp_name(target)
        try:
            if source.is_dir():
                shutil.copytree(source, temp)
            else:
                shutil.copyfile(source, temp)
            self.remove(rel)
            temp.rename(target)
        finally:
            if temp.is_dir():
                shutil.rmtree(temp)
            temp.unlink(missing_ok=True)

    def list_meta(self) -> list[str]:
        return sorted(
            str(path.relative_to(self.root))
            for path in self.root.rglob("*.meta")
            if path.is_file() and not path.name.startswith(".")
        )

    def move(self, rel: str, to: Area) -> None:
        source = self.root / rel
        if isinstance(to, LocalArea):
            target = to.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            to.remove(rel)
            shutil.move(source, target)
        else:
            to.put_path(rel, source)
            self.remove(rel)

    def remove(self, rel: str) -> None:
        target = self.root / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()


class S3Area:
    """An S3 prefix (``s3://bucket/prefix``)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _keys(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix`` (all pages)."""
        paginator = self.client.get_paginator("list_objects_v2")
        return [
            obj["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]

    def _keys_under(self, rel: str) -> list[str]:
        """The object ``rel`` itself, or every object of the tree ``rel``."""
        key = self._key(rel)
        return [k for k in self._keys(key) if k == key or k.startswith(key + "/")]

    def check(self, *, what: str, writable: bool) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            if writable:
                probe = self._key(f".sluice-probe-{uuid.uuid4().hex[:8]}")
                self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"")
                self.client.delete_object(Bucket=self.bucket, Key=probe)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            problem = "does not exist" if code in {"404", "NoSuchBucket"} else "is not writable"
            raise SluiceInputError(f"{what}: {self.url} {problem} ({code})") from None

    def has(self, rel: str) -> bool:
        return bool(self._keys_under(rel))

    def read(self, rel: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(rel))["Body"].read()

    def put_bytes(self, rel: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)

    def put_path(self, rel: str, source: Path) -> None:
        files = (
            [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        )
        for path in files:
            sub = rel if path == source else f"{rel}/{path.relative_to(source).as_posix()}"
            self.client.upload_file(str(path), self.bucket, self._key(sub))

    def list_meta(self) -> list[str]:
        base = self._key("")
        return sorted(
            key[len(base) :]
            for key in self._keys(base)
            if key.endswith(".meta") and not key.rsplit("/", 1)[-1].startswith(".")
        )

    def move(self, rel: str, to: Area) -> None:
        base = self._key(rel)
        for key in self._keys_under(rel):
            sub = rel + key[len(base) :]
            if isinstance(to, S3Area):
                to.client.copy_object(
                    Bucket=to.bucket,
                    Key=to._key(sub),
                    CopySource={"Bucket": self.bucket, "Key": key},
                )
            else:
                to.put_bytes(
                    sub, self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                )
        self.remove(rel)

    def remove(self, rel: str) -> None:
        for key in self._keys_under(rel):
            self.client.delete_object(Bucket=self.bucket, Key=key)


def open_area(url: str, *, s3_client: Any = None) -> Area:
    """A local path or ``s3://bucket/prefix``; S3 uses ``s3_client`` or boto3's default chain."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise SluiceInputError(f"area {url!r}: an S3 URL needs a bucket (s3://bucket/prefix)")
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Area(parsed.netloc, parsed.path, s3_client)
    if parsed.scheme not in ("", "file"):
        raise SluiceInputError(f"area {url!r}: use a local path or s3://bucket/prefix")
    return LocalArea(Path(parsed.path if parsed.scheme == "file" else url).expanduser())
