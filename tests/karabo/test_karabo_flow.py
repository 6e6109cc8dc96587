"""The Karabo flow end to end on the local backend with the stand-in simulation and ingestor."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from sluice.flows.karabo import Ingestor, karabo_simulation
from sluice.tasks.karabo import IngestFailed

from sluice.karabo import standin_ingestor
from sluice.karabo.meta import problem
from sluice.karabo.settings import Product
from sluice.ledger import open_ledger
from tests.flow_logs import run_log_lines
from tests.karabo.conftest import TINY

pytestmark = pytest.mark.usefixtures("prefect_api")


def run_flow(areas: dict[str, Path], tmp_path: Path, **overrides):
    params = {
        **TINY,
        "obs_id": "20260101T000000_SKAMID_Karabo_test_hourly",
        "file_prefix": "20260101T000000_SKAMID_Karabo_test_hourly_",
        "products": [Product.DIRTY, Product.CLEANED, Product.VISIBILITY],
        "staging": str(areas["staging"]),
        "processed": str(areas["processed"]),
        "failed": str(areas["failed"]),
        "scratch_dir": str(tmp_path / "scratch"),
        "report_dir": str(tmp_path / "reports"),
        "verify_timeout_seconds": 60.0,
        **overrides,
    }
    return karabo_simulation(**params)


def test_products_with_valid_meta_reach_processed_and_temp_data_is_cleaned(
    areas, tmp_path, sluice_home
):
    result = run_flow(areas, tmp_path)

    prefix = "testing/20260101T000000_SKAMID_Karabo_test_hourly_"
    assert result == {
        f"{prefix}dirty.fits": "processed",
        f"{prefix}cleaned.fits": "processed",
        f"{prefix}measurements.ms": "processed",
    }
    processed = areas["processed"] / "testing"
    for name in ("dirty.fits", "cleaned.fits", "measurements.ms"):
        full = f"20260101T000000_SKAMID_Karabo_test_hourly_{name}"
        meta = (processed / f"{full}.meta").read_bytes()
        assert problem(meta, full) is None
        document = json.loads(meta)
        assert document["meta"]["obs_id"] == "20260101T000000_SKAMID_Karabo_test_hourly"
        assert ("s_ra" in document["meta"]) == name.endswith(".fits")
    # 16^2 pixels x 1 MFS plane x 8 B of data after one 2880 B FITS header block
    assert (processed / "20260101T000000_SKAMID_Karabo_test_hourly_dirty.fits").stat().st_size == (
        2880 + 16 * 16 * 1 * 8
    )
    ms = processed / "20260101T000000_SKAMID_Karabo_test_hourly_measurements.ms" / "DATA"
    assert ms.stat().st_size == 2 * 3 * 10296 * 4 * 8
    assert list(areas["staging"].rglob("*")) == [areas["staging"] / "testing"]
    assert not list(areas["failed"].rglob("*"))
    assert not (tmp_path / "scratch" / "20260101T000000_SKAMID_Karabo_test_hourly").exists()
    estimate = json.loads(
        (
            tmp_path / "reports" / "20260101T000000_SKAMID_Karabo_test_hourly-estimate.json"
        ).read_text()
    )
    assert estimate["channels"] == 2 and estimate["ms_bytes"] == ms.stat().st_size
    assert estimate["image_bytes"] == 16 * 16 * 8


def test_rerun_of_the_same_slot_resumes_without_simulating_again(areas, tmp_path, sluice_home):
    ledger_url = f"sqlite:///{tmp_path / 'own-ledger.db'}"  # the flow's ledger parameter
    run_flow(areas, tmp_path, products=[Product.DIRTY], ledger_url=ledger_url)
    with run_log_lines() as lines:
        again = run_flow(areas, tmp_path, products=[Product.DIRTY], ledger_url=ledger_url)

    assert list(again.values()) == ["processed"]
    obs_id = "20260101T000000_SKAMID_Karabo_test_hourly"
    assert f"{obs_id}: 1 of 1 products already ingested; nothing to submit" in lines
    run = "karabo-20260101T000000_SKAMID_Karabo_test_hourly"
    ledger = open_ledger(ledger_url)
    try:
        attempts = ledger.attempts(run)
    finally:
        ledger.close()
    assert [(a.item, a.outcome) for a in attempts] == [("simulation", "succeeded")]
    assert attempts[0].started_at is not None and attempts[0].finished_at is not None
    default = open_ledger()
    try:
        assert run not in default.runs()  # recorded in the ledger given, not the default one
    finally:
        default.close()


def test_products_the_ingestor_fails_fail_the_run_and_are_listed(areas, tmp_path, sluice_home):
    # An external ingestor that files everything under "failed" (as for a Rucio outage).
    with (
        standin_ingestor.running(str(areas["staging"]), str(areas["failed"]), str(areas["failed"])),
        pytest.raises(IngestFailed, match="2 of 2 product"),
    ):
        run_flow(
            areas,
            tmp_path,
            products=[Product.CLEANED, Product.DIRTY],
            ingestor=Ingestor.EXTERNAL,
        )

    async def failure_artifact():
        async with get_client() as client:
            return await client.read_latest_artifacts()

    latest = {a.key: a for a in asyncio.run(failure_artifact())}
    assert "cleaned.fits" in latest["karabo-ingest-failures"].data
    # Nothing was cleaned up after a failure: the temporary data stays for inspection.
    assert (tmp_path / "scratch" / "20260101T000000_SKAMID_Karabo_test_hourly").exists()
