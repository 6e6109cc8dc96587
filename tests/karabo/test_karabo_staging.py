"""Staging areas (local and S3 on a moto server) and the stand-in ingestor's verdicts."""

from __future__ import annotations

import json

import boto3
import pytest
from sluice.blocks.storage import storage_for
from sluice.flows.karabo import karabo_simulation

from sluice.errors import SluiceInputError
from sluice.karabo.areas import Area, open_area
from sluice.karabo.ingest import stage, targets
from sluice.karabo.settings import KaraboSettings
from sluice.karabo.standin_ingestor import sweep
from tests.karabo.conftest import TINY


def test_the_standin_ingestor_fails_invalid_meta_and_orphan_meta(areas):
    staging, processed, failed = (
        open_area(str(areas[n])) for n in ("staging", "processed", "failed")
    )
    good = {"namespace": "testing", "name": "a.fits", "lifetime": 60}
    staging.put_bytes("testing/a.fits", b"A")
    staging.put_bytes("testing/a.fits.meta", json.dumps(good).encode())
    staging.put_bytes("testing/b.fits", b"B")
    staging.put_bytes("testing/b.fits.meta", json.dumps({**good, "name": "other.fits"}).encode())
    staging.put_bytes("testing/c.fits.meta", json.dumps({**good, "name": "c.fits"}).encode())
    staging.put_bytes("testing/d.fits", b"no meta yet: not touched")

    assert sweep(staging, processed, failed) == 3

    assert sorted(p.name for p in (areas["processed"] / "testing").iterdir()) == [
        "a.fits",
        "a.fits.meta",
    ]
    assert sorted(p.name for p in (areas["failed"] / "testing").iterdir()) == [
        "b.fits",
        "b.fits.meta",
        "c.fits.meta",
    ]
    assert [p.name for p in (areas["staging"] / "testing").iterdir()] == ["d.fits"]


class RecordingArea(Area):
    """A real local area that also records the order of the writes the ingestor could see."""

    def __init__(self, root):
        super().__init__(str(root))
        self.writes: list[str] = []

    def put_path(self, rel, source):
        super().put_path(rel, source)
        self.writes.append(rel)

    def put_bytes(self, rel, data):
        super().put_bytes(rel, data)
        self.writes.append(rel)


def test_each_product_is_in_place_before_its_meta(areas, tmp_path):
    settings = KaraboSettings.parse(
        **TINY, obs_id="o", file_prefix="o_", products=("dirty", "cleaned")
    )
    workdir = tmp_path / "work"
    (workdir / "testing").mkdir(parents=True)
    for name in ("o_dirty.fits", "o_cleaned.fits"):
        (workdir / "testing" / name).write_bytes(b"fits")
    staging = RecordingArea(areas["staging"])

    stage(settings, workdir, staging, targets(settings))

    assert staging.writes == [
        "testing/o_dirty.fits",
        "testing/o_dirty.fits.meta",
        "testing/o_cleaned.fits",
        "testing/o_cleaned.fits.meta",
    ]
    meta = json.loads((areas["staging"] / "testing" / "o_dirty.fits.meta").read_text())
    assert meta == {
        "namespace": "testing",
        "name": "o_dirty.fits",
        "lifetime": 31536000,
        "meta": {
            "dataproduct_type": "image",
            "obs_collection": "SKAO/SKAMID",
            "obs_id": "o",
            "obs_publisher_did": "ivo://test.skao/~?testing:o_dirty.fits",
            "access_url": "https://datalink.ivoa.srcdev.skao.int/rucio/links?id=testing:o_dirty.fits",
            "s_ra": 150.12,
            "s_dec": 2.21,
        },
    }


def test_local_staging_leaves_no_temporary_names(areas, tmp_path):
    tree = tmp_path / "x.ms"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "DATA").write_bytes(b"1" * 100)
    staging = open_area(str(areas["staging"]))

    staging.put_path("testing/x.ms", tree)
    staging.put_path("testing/x.ms", tree)  # a rerun replaces its own product

    assert sorted(str(p.relative_to(areas["staging"])) for p in areas["staging"].rglob("*")) == [
        "testing",
        "testing/x.ms",
        "testing/x.ms/sub",
        "testing/x.ms/sub/DATA",
    ]


def test_a_missing_bucket_is_refused(s3_env):
    with pytest.raises(SluiceInputError, match=r"staging: s3://no-such-bucket/st does not exist"):
        open_area("s3://no-such-bucket/st").check(what="staging", writable=True)


@pytest.mark.usefixtures("prefect_api")
def test_a_run_through_s3_staging_is_verified_and_cleaned(s3_env, tmp_path, sluice_home):
    result = karabo_simulation(
        **TINY,
        obs_id="s3run",
        file_prefix="s3run_",
        products=["cleaned", "visibility"],
        staging=f"{s3_env}/staging",
        processed=f"{s3_env}/processed",
        failed=f"{s3_env}/failed_processing",
        scratch_dir=str(tmp_path / "scratch"),
        report_dir=str(tmp_path / "reports"),
        verify_timeout_seconds=60.0,
    )

    assert result == {
        "testing/s3run_cleaned.fits": "processed",
        "testing/s3run_measurements.ms": "processed",
    }
    keys = sorted(
        o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="ingest-area")["Contents"]
    )
    assert keys == [
        "processed/testing/s3run_cleaned.fits",
        "processed/testing/s3run_cleaned.fits.meta",
        "processed/testing/s3run_measurements.ms.meta",
        "processed/testing/s3run_measurements.ms/DATA",
    ]


@pytest.mark.usefixtures("prefect_api")
def test_s3_areas_can_use_an_aws_credentials_block(s3_env, moto_s3, monkeypatch):
    from prefect_aws import AwsClientParameters, AwsCredentials

    AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=moto_s3),
    ).save("karabo-test-s3", overwrite=True)
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only the block knows where the store is

    block = AwsCredentials.load("karabo-test-s3")  # what the flow's block parameter holds
    area = open_area(f"{s3_env}/staging", storage=storage_for(block))
    area.check(what="staging", writable=True)
    area.put_bytes("testing/x.meta", b"{}")

    assert area.list_meta() == ["testing/x.meta"]
