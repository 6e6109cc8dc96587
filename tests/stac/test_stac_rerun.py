"""A second run of a finished STAC batch says so in one line and runs no job."""

from __future__ import annotations

from sluice.ledger import open_ledger
from tests.flow_logs import run_log_lines
from tests.stac.test_stac_batch_local import run_batch


def test_a_finished_batch_run_again_submits_nothing_and_says_so(
    prefect_api, sluice_home, tmp_path, stac_fixture, stac_api, bucket
):
    item_list = tmp_path / "items.txt"
    item_list.write_text("ahps-aaa1-nws\nahps-bbb2-nws\n")
    batch = {"batch_name": "again", "item_list": str(item_list)}
    run_batch(tmp_path, stac_fixture, stac_api, bucket, **batch)
    ledger = open_ledger()
    before = ledger.last_id("stac/again")
    with run_log_lines() as lines:
        run_batch(tmp_path, stac_fixture, stac_api, bucket, **batch)
    assert "2 of 2 items already succeeded; nothing to submit" in lines
    assert ledger.last_id("stac/again") == before  # no attempt recorded
    ledger.close()
