"""Item lookup as the seed does it: by id in every collection (or --collection), with
--benchmark_sources only passed on; ids the STAC API lacks are counted and fail the batch."""

from __future__ import annotations

import pytest
from sluice.flows.stac_batch import StacBatchIncomplete

from sluice.ledger import open_ledger
from tests.stac.test_stac_batch_local import run_batch


def test_usgs_item_runs_with_nws_benchmark_sources_and_missing_ids_fail(
    prefect_api, sluice_home, tmp_path, stac_fixture, stac_api, bucket
):
    item_list = tmp_path / "items.txt"
    item_list.write_text("ahps-ddd4-usgs\nno-such-item\n")
    common = dict(
        item_list=str(item_list),
        benchmark_sources=["nws-fim-collection"],  # the seed's documented command
        batch_name="lookup",
    )
    # default --on_missing fail: the found item runs, the batch says how many were missing
    with pytest.raises(StacBatchIncomplete, match=r"0 failed \(0 silent\), 1 item id"):
        run_batch(tmp_path, stac_fixture, stac_api, bucket, **common)
    latest = open_ledger().latest("stac/lookup")
    assert set(latest) == {"ahps-ddd4-usgs"}
    assert latest["ahps-ddd4-usgs"].outcome == "succeeded"
    # --on_missing continue: exit 0, the id is still listed
    summary = run_batch(tmp_path, stac_fixture, stac_api, bucket, on_missing="continue", **common)
    assert summary["not_found"] == 1 and summary["admitted"] == 0
    # --collection narrows the lookup: the usgs item is then missing too
    with pytest.raises(StacBatchIncomplete, match="2 item id"):
        run_batch(
            tmp_path, stac_fixture, stac_api, bucket, collection="nws-fim-collection", **common
        )
