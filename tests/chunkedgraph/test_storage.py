"""The storage layer against real servers: local files, moto S3, a local GCS emulator."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prefect_aws import AwsClientParameters, AwsCredentials
from prefect_gcp import GcpCredentials
from sluice.blocks.storage import gcs_settings, s3_settings

from sluice.chunkedgraph.mirror import StateMirror
from sluice.storage import Storage, StorageError


@pytest.fixture
def s3_bucket(moto_s3: str) -> str:
    boto3.client(
        "s3",
        endpoint_url=moto_s3,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    ).create_bucket(Bucket="cg-store")
    return "s3://cg-store"


def aws_block(endpoint: str) -> AwsCredentials:
    return AwsCredentials(
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint),
    )


@pytest.fixture(params=["local", "file", "s3", "gs"])
def root(request, tmp_path: Path) -> Iterator[tuple[Storage, str]]:
    """A storage and a fresh folder URL on each backend."""
    if request.param == "local":
        yield Storage(), str(tmp_path / "store")
    elif request.param == "file":
        yield Storage(), f"file://{tmp_path / 'store'}"
    elif request.param == "s3":
        moto = request.getfixturevalue("moto_s3")
        yield (
            Storage(s3=s3_settings(aws_block(moto))),
            f"{request.getfixturevalue('s3_bucket')}/{tmp_path.name}",
        )
    else:
        request.getfixturevalue("on_gcs_emulator")
        yield Storage(), f"gs://ws/{tmp_path.name}"


def test_write_read_list_exists_delete(root):
    storage, base = root
    assert storage.list(base) == []
    assert not storage.exists(f"{base}/a/info")
    storage.write_text(f"{base}/a/info", '{"x": 1}')
    storage.write_bytes(f"{base}/b.bin", b"\x00\xff")
    storage.write_text(f"{base}/a/info", '{"x": 2}')  # replaced whole
    assert storage.read_text(f"{base}/a/info") == '{"x": 2}'
    assert storage.read_bytes(f"{base}/b.bin") == b"\x00\xff"
    assert storage.exists(f"{base}/a/info")
    assert storage.list(base) == [f"{base}/a/info", f"{base}/b.bin"]
    storage.delete(f"{base}/b.bin")
    storage.delete(f"{base}/b.bin")  # already gone: not an error
    assert storage.list(base) == [f"{base}/a/info"]
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(f"{base}/b.bin")


def test_local_put_that_cannot_land_leaves_no_temporary_file(tmp_path):
    storage = Storage()
    target = tmp_path / "state.bin"
    target.mkdir()
    (target / "keep").write_text("x")  # the rename over a non-empty directory fails
    with pytest.raises(OSError):
        storage.write_bytes(str(target), b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.bin"]
    assert (target / "keep").read_text() == "x"


def test_relative_local_paths_resolve_against_a_base(tmp_path):
    storage = Storage()
    assert storage.resolve("file://./ws/info", tmp_path) == str(tmp_path / "ws" / "info")
    assert storage.resolve("ws/info", tmp_path) == str(tmp_path / "ws" / "info")
    assert storage.resolve("/abs/info", tmp_path) == "/abs/info"
    assert storage.resolve("gs://b/ws/info", tmp_path) == "gs://b/ws/info"


@pytest.mark.parametrize("url", ["ftp://host/x", "http://host/x", "gs://", "s3:///key"])
def test_unsupported_or_bucketless_urls_are_one_line(url):
    with pytest.raises(StorageError) as raised:
        Storage().read_bytes(url)
    assert url in str(raised.value) and "\n" not in str(raised.value)


def test_s3_credentials_come_from_the_block_not_the_environment(moto_s3, s3_bucket, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    storage = Storage(s3=s3_settings(aws_block(moto_s3)))
    storage.write_text(f"{s3_bucket}/blocked/info", "{}")
    assert storage.read_text(f"{s3_bucket}/blocked/info") == "{}"
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("s3://no-such-bucket/x")


def test_an_unreachable_endpoint_is_one_line_naming_the_url():
    storage = Storage(s3=s3_settings(aws_block("http://127.0.0.1:9")))
    with pytest.raises(StorageError) as raised:
        storage.read_bytes("s3://cg-store/info")
    assert str(raised.value).startswith("s3://cg-store/info: ")
    assert "\n" not in str(raised.value)


class _TokenEndpoint(BaseHTTPRequestHandler):
    """Google's OAuth token endpoint, as a service-account JWT grant sees it."""

    grants: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.grants.append(body)
        answer = json.dumps({"access_token": "tok-123", "expires_in": 3600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def token_uri() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/token"
    server.shutdown()


def test_gcs_with_a_service_account_block(on_gcs_emulator, token_uri):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "cg-project",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": "ingest@cg-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    storage = Storage(gcs=gcs_settings(GcpCredentials(service_account_info=info)))
    storage.write_text("gs://ws/sa/info", '{"ok": true}')
    assert storage.read_text("gs://ws/sa/info") == '{"ok": true}'
    assert _TokenEndpoint.grants, "the block's service account was used to get a token"
    assert "jwt-bearer" in _TokenEndpoint.grants[-1]


def test_a_whole_bucket_or_a_copy_over_its_own_source_is_refused(moto_s3, s3_bucket):
    storage = Storage(s3=s3_settings(aws_block(moto_s3)))
    storage.write_text(f"{s3_bucket}/keep/info", "{}")
    for url in (s3_bucket, f"{s3_bucket}/"):
        with pytest.raises(StorageError, match="refusing to delete a whole bucket"):
            storage.delete(url)
    with pytest.raises(StorageError, match="would replace its own source"):
        storage.copy(f"{s3_bucket}/keep", s3_bucket)
    assert storage.read_text(f"{s3_bucket}/keep/info") == "{}"  # nothing was removed


def test_a_mirror_from_before_tables_kept_a_history_still_restores(tmp_path):
    mirrored = tmp_path / "bucket" / "table"
    mirrored.mkdir(parents=True)
    (mirrored / "table.json").write_text("{}")
    (mirrored / "state.bin").write_bytes(b"snapshot")
    home = tmp_path / "home"

    assert StateMirror(Storage(), f"file://{tmp_path / 'bucket'}", "table").restore(home)
    assert (home / "state.bin").read_bytes() == b"snapshot"
    assert not (home / "history.json").exists()
