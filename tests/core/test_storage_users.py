"""The four users of ``sluice.storage`` (ChunkedGraph's info reader, Karabo's areas, STAC
outputs, the watershed base project) on s3:// (moto server) and gs:// (a GCS emulator),
through the same layer and the same settings."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from sluice.chunkedgraph.config import read_info
from sluice.errors import SluiceInputError
from sluice.karabo.areas import open_area
from sluice.stac.outputs import StorageRoot, job_credentials, read_url, secret_values, write_url
from sluice.storage import S3Settings, Storage, StorageError
from sluice.watersheds.base_source import fetch_base

SECRET = "moto-secret-key-0123456789"


@pytest.fixture(params=["s3", "gs"])
def store(request, tmp_path: Path) -> Iterator[tuple[Storage, str]]:
    """A storage with explicit settings and a fresh prefix URL on each object store."""
    if request.param == "s3":
        moto = request.getfixturevalue("moto_s3")
        bucket = f"users-{uuid.uuid4().hex[:12]}"
        boto3.client(
            "s3",
            endpoint_url=moto,
            aws_access_key_id="testing",
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        settings = S3Settings(
            access_key_id="testing",
            secret_access_key=SECRET,
            region="us-east-1",
            endpoint_url=moto,
        )
        yield Storage(s3=settings), f"s3://{bucket}/{tmp_path.name}"
    else:
        request.getfixturevalue("on_gcs_emulator")
        yield Storage(), f"gs://ws/{tmp_path.name}"


def test_chunkedgraph_info_reader(store):
    storage, base = store
    storage.write_text(f"{base}/ws/info", json.dumps({"scales": [{"size": [8, 8, 8]}]}))

    assert read_info(f"precomputed://{base}/ws", storage=storage) == {
        "scales": [{"size": [8, 8, 8]}]
    }
    with pytest.raises(SluiceInputError, match=f"{base}/absent/info: no such file"):
        read_info(f"{base}/absent", storage=storage)


def test_karabo_areas(store, tmp_path):
    storage, base = store
    staging = open_area(f"{base}/staging", storage=storage)
    processed = open_area(f"{base}/processed", storage=storage)
    tree = tmp_path / "x.ms"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "DATA").write_bytes(b"1" * 100)
    (tree / "table.dat").write_bytes(b"t")

    staging.check(what="staging", writable=True)
    staging.put_path("testing/x.ms", tree)
    staging.put_path("testing/x.ms", tree)  # a rerun replaces its own product
    staging.put_bytes("testing/x.ms.meta", b"{}")
    staging.put_bytes("testing/.hidden.meta", b"{}")

    assert staging.list_meta() == ["testing/x.ms.meta"]
    assert staging.has("testing/x.ms") and staging.has("testing/x.ms.meta")
    assert not staging.has("testing/x")
    staging.move("testing/x.ms", processed)
    staging.move("testing/x.ms.meta", processed)
    assert not staging.has("testing/x.ms") and not staging.has("testing/x.ms.meta")
    assert storage.list(f"{base}/processed") == [
        f"{base}/processed/testing/x.ms.meta",
        f"{base}/processed/testing/x.ms/sub/DATA",
        f"{base}/processed/testing/x.ms/table.dat",
    ]
    assert processed.read("testing/x.ms/sub/DATA") == b"1" * 100
    processed.remove("testing/x.ms")
    assert storage.list(f"{base}/processed") == [f"{base}/processed/testing/x.ms.meta"]


def test_karabo_area_in_a_missing_bucket(store):
    storage, base = store
    scheme = base.split("://")[0]
    area = open_area(f"{scheme}://no-such-bucket-{uuid.uuid4().hex[:8]}/st", storage=storage)
    with pytest.raises(SluiceInputError, match=r"staging: .*/st does not exist"):
        area.check(what="staging", writable=True)


def test_stac_outputs_and_job_side_reads(store, monkeypatch):
    storage, base = store
    outputs = StorageRoot(f"{base}/batch", storage.s3 if base.startswith("s3") else None)
    outputs.check_writable()

    address = outputs.write("item-1/aoi.gpkg", b"gpkg")

    assert address == f"{base}/batch/item-1/aoi.gpkg"
    assert outputs.read("item-1/aoi.gpkg") == b"gpkg"
    assert storage.list(f"{base}/batch") == [address]  # the probe is gone
    if base.startswith("s3"):  # a job reaches S3 with the environment it is given
        for key, value in job_credentials(outputs.credentials).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", outputs.credentials.endpoint_url)
    write_url(f"{base}/batch/item-1/agreement.json", b"{}")
    assert read_url(f"{base}/batch/item-1/agreement.json") == b"{}"


def test_watershed_base_project(store, tmp_path):
    storage, base = store
    storage.write_text(f"{base}/projects/base/ron.nodb", "{}")
    storage.write_text(f"{base}/projects/base/dem/dem.tif", "dem")
    storage.write_text(f"{base}/projects/base2/other.nodb", "not ours")

    fetch_base(f"{base}/projects/base/", tmp_path / "_base", storage=storage)

    found = sorted(p.relative_to(tmp_path / "_base") for p in (tmp_path / "_base").rglob("*"))
    assert found == [Path("dem"), Path("dem/dem.tif"), Path("ron.nodb")]
    with pytest.raises(SluiceInputError, match="no objects under that prefix"):
        fetch_base(f"{base}/projects/none", tmp_path / "none", storage=storage)
    assert not (tmp_path / "none").exists()


def test_secrets_stay_out_of_text_and_errors(moto_s3):
    settings = S3Settings(access_key_id="testing", secret_access_key=SECRET, endpoint_url=moto_s3)

    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert secret_values(settings) == [
        "testing",
        SECRET,
    ]  # what reports redact
    with pytest.raises(StorageError) as raised:  # a refused key: one line, no secret
        Storage(s3=settings.model_copy(update={"endpoint_url": "http://127.0.0.1:9"})).read_bytes(
            "s3://b/k"
        )
    assert SECRET not in str(raised.value) and "\n" not in str(raised.value)
