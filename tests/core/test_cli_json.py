"""``--json`` on the status, report and estimate commands: what they print is what
docs/cli.md documents, and agrees with the text output."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.tracker import DONE, FAILED, Record, TableState, register_table, table_dir
from sluice.cli import app
from tests.cli_json import documented, printed
from tests.conftest import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _sluice(*args: str):
    return CliRunner().invoke(app, list(args))


def test_karabo_estimate_json_gives_the_numbers_of_the_table():
    args = ["karabo", "estimate", "--num-time-stamps", "4", "--imaging-npixel", "512"]
    found = _sluice(*args, "--json")
    assert found.exit_code == 0, found.output
    estimate = json.loads(found.stdout)
    assert set(estimate) == documented("karabo estimate")
    assert (estimate["time_stamps"], estimate["npixel"]) == (4, 512)
    text = _sluice(*args).stdout
    assert f"{estimate['memory_bytes']:,} B" in text
    assert f"{estimate['scratch_bytes']:,} B" in text


def test_server_status_json_when_stopped_and_when_another_server_has_the_port(
    sluice_home, monkeypatch, prefect_api
):
    monkeypatch.setenv("SLUICE_SERVER_PORT", str(free_port()))
    stopped = _sluice("server", "status", "--json")
    assert stopped.exit_code == 1
    status = json.loads(stopped.stdout)
    assert set(status) == documented("server status")
    assert status | {"port": 0} == {
        "state": "stopped",
        "home": str(sluice_home),
        "pid": None,
        "port": 0,
        "ui_url": None,
        "port_taken": False,
        "prefect_api_url": status["prefect_api_url"],
    }
    monkeypatch.setenv("SLUICE_SERVER_PORT", str(httpx.URL(prefect_api).port))
    taken = json.loads(_sluice("server", "status", "--json").stdout)
    assert (taken["state"], taken["port_taken"]) == ("stopped", True)


def test_chunkedgraph_status_json_counts_each_layer_and_the_failures(sluice_home):
    grid = ChunkGrid((4, 4, 4))
    directory = table_dir("seed")
    register_table(directory, "seed", "d.yml", grid, {"kind": "noop"}, {})
    state = TableState(directory, grid)
    state.absorb([Record(DONE, 2, 0), Record(DONE, 2, 1), Record(FAILED, 2, 5, "boom")])
    state.save()
    found = _sluice("chunkedgraph", "status", "seed", "--json")
    assert found.exit_code == 0, found.output
    status = json.loads(found.stdout)
    assert printed(status, "layers") == documented("chunkedgraph status")
    assert status == {
        "table": "seed",
        "layers": [
            {"layer": 2, "done": 2, "count": 64},
            {"layer": 3, "done": 0, "count": 8},
            {"layer": 4, "done": 0, "count": 1},
        ],
        "failed_chunks": 1,
    }
    assert _sluice("chunkedgraph", "status", "seed").stdout.startswith("2\t: 2 / 64\n")


def test_stac_report_json_gives_the_summary_and_where_it_went(tmp_path):
    logs = tmp_path / "logs"
    (logs / "b").mkdir(parents=True)
    (logs / "b" / "pipeline.log").write_text('{"message": "Pipeline SUCCESS"}\n')
    run_list = tmp_path / "ids.txt"
    run_list.write_text("aoi-1\naoi-2\n")
    argv = ["stac-report", "--run_list", str(run_list), "--log_dir", str(logs)]
    found = _sluice(*argv, "--report_dir", str(tmp_path / "r"), "--json")
    assert found.exit_code == 0, found.output
    report = json.loads(found.stdout)
    assert set(report) == documented("stac-report")
    assert report["report_dir"] == str((tmp_path / "r").resolve())
    assert report["summary"] == json.loads((tmp_path / "r" / "summary.json").read_text())
    assert report["summary"]["items"] == 2


def test_watersheds_validate_json_keys_are_documented():
    template = "{slug(properties['HucName'])}-{zfill(one_based_index, 3)}"
    geojson = str(EXAMPLES / "watersheds" / "simple.geojson")
    found = _sluice(
        "watersheds", "validate", "--geojson", geojson, "--template", template, "--json"
    )
    assert found.exit_code == 0, found.output
    assert set(json.loads(found.stdout)) == documented("watersheds validate")
