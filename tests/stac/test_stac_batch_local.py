"""Both modes end to end on the local backend: STAC items from rustac, outputs in moto S3."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from sluice.flows.stac_batch import StacBatchIncomplete, stac_batch
from typer.testing import CliRunner

from sluice.cli import app
from sluice.ledger import open_ledger
from tests.stac.conftest import s3_objects

ITEMS = [
    "ahps-aaa1-nws",
    "ahps-bbb2-nws",
    "ahps-ccc3-nws",
    "ahps-ddd4-usgs",
    "ahps-empty-nws",
    "ahps-fail-nws",
]
SOURCES = ["nws-fim-collection", "usgs-fim-collection"]


def run_batch(tmp_path: Path, stac_fixture: Path, stac_api: str, bucket: str, **params):
    defaults = dict(
        batch_name=params.pop("batch_name", "b1"),
        output_root=f"s3://{bucket}/autoeval",
        hand_index_path=str(stac_fixture / "hand_index"),
        stac_api_url=stac_api,
        benchmark_sources=SOURCES,
        wait_seconds=0.01,
        stop_threshold=3,
        resume_threshold=1,
        use_local_creds=True,
        admission_poll_seconds=0.5,
        chunk_size=2,
        parallelism=4,
        report_dir=str(tmp_path / "report"),
        temp_dir=str(tmp_path / "aois"),
    )
    return stac_batch(**{**defaults, **params})


def compare_reports():
    from tests.stac.test_stac_reports import compare

    return compare


def lines(path: Path) -> list[str]:
    return path.read_text().split()


@pytest.mark.parametrize("mode", ["pipeline", "stage"])
def test_batch_reports_resubmits_and_skips(
    mode, prefect_api, sluice_home, tmp_path, stac_fixture, stac_api, bucket
):
    item_list = tmp_path / "items.txt"
    item_list.write_text("\n".join([*ITEMS, "no-such-item"]) + "\n")
    fixture = tmp_path / "fixture"
    shutil.copytree(stac_fixture, fixture)
    with pytest.raises(StacBatchIncomplete, match="1 failed"):
        run_batch(
            tmp_path,
            stac_fixture,
            stac_api,
            bucket,
            item_list=str(item_list),
            mode=mode,
            chunk_size=3,  # ahps-ddd4-usgs shares its stage jobs with the failing item
        )
    if mode == "stage":  # the failed inundate batch was retried one entry per job
        retried = [a for a in open_ledger().attempts("stac/b1/inundate") if "-1-" in a.item]
        assert {a.outcome for a in retried} == {"succeeded", "failed"}

    report = tmp_path / "report"
    assert lines(report / "unique_fail_aoi_names.txt") == ["ahps-fail-nws", "no-such-item"]
    assert lines(report / "not_found_aois.txt") == ["no-such-item"]
    assert lines(report / "silent_failures.txt") == ["no-such-item"]  # as the seed's
    assert not (report / "missing_aois.txt").exists()  # the seed writes it on a miscount only
    assert lines(report / "unique_success_aoi_names.txt") == sorted(set(ITEMS) - {"ahps-fail-nws"})
    assert lines(report / "early_exit_aois.txt") == ["ahps-empty-nws"]
    assert lines(report / "failed_aois.txt") == ["ahps-fail-nws"]
    assert lines(report / "sorted-run-list.txt") == sorted([*ITEMS, "no-such-item"])
    if mode == "pipeline":  # the seed reads "no valid data" from agreement jobs' logs only
        assert lines(report / "ignorable_errors_aois.txt") == []
    else:  # each stage entry's log is its own: the failing batch-mate taints nobody
        assert lines(report / "ignorable_errors_aois.txt") == ["ahps-ccc3-nws"]
        assert lines(report / "inundate_errors_aois.txt") == ["ahps-fail-nws"]
        assert lines(report / "agr_mos_errors_aois.txt") == ["ahps-fail-nws"]
        assert json.loads((report / "inundate_errors.json").read_text())[0]["file"].startswith(
            "hand_inundator/dispatch-[batch_name=b1,aoi_name=ahps-fail-nws,entry=0]-inundate-"
        )
    seed_script = os.environ.get("SLUICE_SEED_LOCAL_REPORTS")
    if seed_script:  # the seed's own local_reports.py on this batch's saved logs: same files
        logs = sluice_home / "stac" / "b1" / "logs"
        work = tmp_path / "compare"
        work.mkdir()
        run_list = report / "sorted-run-list.txt"
        assert compare_reports().compare(Path(seed_script), run_list, logs, work) == []
    # `sluice stac-report` rebuilds the same report from the ledger and saved logs
    rebuilt = tmp_path / "rebuilt"
    result = CliRunner().invoke(
        app, ["stac-report", "--batch_name", "b1", "--report_dir", str(rebuilt)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in rebuilt.iterdir()) == sorted(p.name for p in report.iterdir())
    for path in report.iterdir():
        assert (rebuilt / path.name).read_text() == path.read_text(), path.name
    page = (report / "report.html").read_text()
    assert page.count("<figure") == 2
    assert "Outcomes over time" in page and "Active jobs against the admission thresholds" in page
    assert "stop (" in page and "resume (" in page  # the thresholds this batch ran with

    objects = s3_objects(bucket, "autoeval/")
    for item in ITEMS:
        assert f"autoeval/AOIs/stac_{item}.gpkg" in objects  # the seed's place
    metrics = objects[
        "autoeval/ahps-aaa1-nws/nws-fim-collection/major/"
        "ahps-aaa1-nws__nws-fim-collection__major__metrics.csv"
    ]
    row = next(csv.DictReader(io.StringIO(metrics.decode())))
    assert int(row["true_positives_count"]) > 0
    assert not any(k.startswith("autoeval/ahps-empty-nws/nws") for k in objects)

    # the failed item's flowfile appears; --resubmit-failed reruns only it
    flowfile = stac_fixture / "assets" / "ahps-fail-nws" / "major_flow_file.csv"
    flowfile.write_text("feature_id,discharge\n1004,99\n")
    try:
        summary = run_batch(
            tmp_path,
            stac_fixture,
            stac_api,
            bucket,
            resubmit_failed=str(report),
            mode=mode,
            report_dir=str(tmp_path / "report2"),
            on_missing="continue",
        )
    finally:
        flowfile.unlink()
    assert summary["success"] == len(ITEMS) and summary["failed"] == 1  # the unknown id
    report2 = tmp_path / "report2"  # only the failed item ran; the report covers the batch
    assert lines(report2 / "sorted-run-list.txt") == sorted([*ITEMS, "no-such-item"])
    assert lines(report2 / "unique_success_aoi_names.txt") == sorted(ITEMS)
    assert lines(report2 / "unique_fail_aoi_names.txt") == ["no-such-item"]
    assert lines(report2 / "failed_aois.txt") == []  # its failed attempt's log is set aside
    assert list((sluice_home / "stac" / "b1" / "superseded-logs").rglob("*.stderr.0"))
    ledger = open_ledger()
    attempts = ledger.attempts("stac/b1")
    per_item = {i: sum(a.item == i for a in attempts) for i in ITEMS}
    assert per_item == {**dict.fromkeys(ITEMS, 1), "ahps-fail-nws": 2}

    # a re-run of the same batch skips every item that succeeded
    summary = run_batch(
        tmp_path,
        stac_fixture,
        stac_api,
        bucket,
        item_list=str(item_list),
        mode=mode,
        report_dir=str(tmp_path / "report3"),
        on_missing="continue",
    )
    assert summary["admitted"] == 0 and summary["success"] == len(ITEMS)
    assert len(ledger.attempts("stac/b1")) == len(attempts)
