"""What a person sees of an ingest: one summary line when chunks fail, and report.html."""

from __future__ import annotations

import pytest
from sluice.flows.chunkedgraph import run_ingest

from sluice.chunkedgraph.tracker import table_dir
from sluice.chunkedgraph.work import ChunkWork
from tests.chunkedgraph.test_cg_ingest import _last_flow_run, finish, sluice
from tests.conftest import ARTIFACTS
from tests.report_pages import open_report

pytestmark = pytest.mark.slow


def test_a_failing_chunk_command_is_one_line_naming_the_report(prefect_api, sluice_home, dataset):
    code, out, err = finish(
        sluice("ingest", "broken", str(dataset), "--test", "--command", "sh -c 'exit 3'")
    )

    shown = f"exit {code}\n{out}\n{err}"
    assert code == 1, shown
    assert "Traceback" not in out + err, shown
    report = table_dir("broken") / "report.md"
    assert err.strip().splitlines()[-1] == (
        f"incomplete: 8 chunks failed (see {report}); `sluice chunkedgraph requeue broken` reruns"
    ), shown
    assert out.splitlines()[-3:] == ["2\t: 0 / 64", "3\t: 0 / 8", "4\t: 0 / 1"]
    assert report.read_text().count("- layer 2 ") == 8
    assert _last_flow_run(prefect_api, "broken")["state"]["type"] == "FAILED"


def test_the_report_page_draws_done_per_layer_over_time_and_renders_offline(
    prefect_api, sluice_home, dataset, browser
):
    run_ingest("drawn", str(dataset), test=True, work=ChunkWork())  # a first run, then the rest
    run_ingest("drawn", str(dataset), work=ChunkWork())
    directory = table_dir("drawn")
    assert f"`sluice report {directory}`" in (directory / "report.md").read_text()

    figures = open_report(browser, directory, 1400)
    assert [f["title"] for f in figures] == ["Done / count per layer over time"]
    assert figures[0]["height"] > 100
    assert all(f"layer {n} ({c})" in figures[0]["text"] for n, c in ((2, 64), (3, 8), (4, 1)))
    facts = [li.text for li in browser.find_elements("tag name", "li")]
    assert facts[0] == "73 of 73 chunks done in layers 2-4, 0 failed"
    assert any(fact.startswith("2 runs from ") for fact in facts), facts
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "chunkedgraph-report.png"))
