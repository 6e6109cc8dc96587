"""End-to-end ingests against a real local Prefect server, through the CLI and the flow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sluice.flows.chunkedgraph import run_ingest

from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.history import History
from sluice.chunkedgraph.tracker import open_table, table_dir
from sluice.chunkedgraph.work import ChunkWork, WorkKind
from tests.chunkedgraph.conftest import WORK

pytestmark = pytest.mark.slow
GRID = ChunkGrid((4, 4, 4))
ALL_CHUNKS = {
    (layer, GRID.coords(layer, index))
    for layer in GRID.layers
    for index in range(GRID.count(layer))
}
CALLABLE = ChunkWork(kind=WorkKind.CALLABLE, atomic=f"{WORK}:chunk")


def sluice(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("sluice")), "chunkedgraph", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def ran(count: Path) -> list[tuple[int, tuple[int, int, int]]]:
    """The chunks the work completed, in order, from its append-only record."""
    entries = []
    for line in count.read_text().splitlines():
        layer, x, y, z = map(int, line.split())
        entries.append((layer, (x, y, z)))
    return entries


def assert_parents_after_children(entries) -> None:
    position = {entry: n for n, entry in enumerate(entries)}
    for (layer, coords), n in position.items():
        for child in GRID.children(layer, coords):
            assert position[(layer - 1, child)] < n


@pytest.fixture
def count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "count.txt"
    monkeypatch.setenv("CG_COUNT", str(path))
    return path


def test_test_run_then_status_then_full_ingest(prefect_api, sluice_home, dataset, count):
    code, out, err = finish(
        sluice("ingest", "seed", str(dataset), "--test", "--atomic", f"{WORK}:chunk")
    )
    assert code == 0, err
    code, out, err = finish(sluice("status", "seed"))
    assert code == 0, err
    assert out == "2\t: 8 / 64\n3\t: 1 / 8\n4\t: 0 / 1\n"
    test_parent = GRID.test_parent()
    assert sorted(ran(count)) == sorted(
        [(2, child) for child in GRID.children(3, test_parent)] + [(3, test_parent)]
    )

    code, out, err = finish(sluice("ingest", "seed", str(dataset), "--atomic", f"{WORK}:chunk"))
    assert code == 0, err
    assert out.splitlines()[-3:] == ["2\t: 64 / 64", "3\t: 8 / 8", "4\t: 1 / 1"]
    entries = ran(count)
    assert len(entries) == len(ALL_CHUNKS) and set(entries) == ALL_CHUNKS  # none twice
    assert_parents_after_children(entries)
    assert "4 : 1 / 1" not in (sluice_home / "chunkedgraph" / "seed" / "report.md").read_text()
    assert "4\t: 1 / 1" in (sluice_home / "chunkedgraph" / "seed" / "report.md").read_text()


def _announced(fifo: Path) -> threading.Thread:
    """Read the announcement on ``fifo`` in the background (open blocks until it is written)."""

    def read() -> None:
        with fifo.open() as announce:
            announce.read()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def test_sigkill_mid_ingest_then_resume_runs_every_chunk_exactly_once(
    prefect_api, sluice_home, dataset, count, tmp_path
):
    fifo = tmp_path / "announce"
    os.mkfifo(fifo)
    args = ("ingest", "killed", str(dataset), "--atomic", f"{WORK}:chunk", "--workers", "1")
    process = sluice(
        *args, env={"CG_KILL_FIFO": str(fifo), "CG_KILL_AT": "30"}, start_new_session=True
    )
    reader = _announced(fifo)
    reader.join(timeout=240)
    assert not reader.is_alive(), "the work never reached the kill point"
    os.killpg(process.pid, signal.SIGKILL)  # the flow, its tracker and its worker processes
    process.communicate()
    before = ran(count)
    assert len(before) == 30

    status = open_table("killed")
    assert sum(status.done_count.values()) == 30  # every completed chunk was recorded

    code, out, err = finish(sluice(*args))
    assert code == 0, err
    assert out.splitlines()[-3:] == ["2\t: 64 / 64", "3\t: 8 / 8", "4\t: 1 / 1"]
    entries = ran(count)
    assert entries[:30] == before
    assert len(entries) == len(ALL_CHUNKS) and set(entries) == ALL_CHUNKS  # exactly once
    assert_parents_after_children(entries)


def test_requeue_reruns_an_injected_failure(prefect_api, sluice_home, dataset, count, tmp_path):
    broken = tmp_path / "broken.txt"
    broken.write_text("2 1 2 3\n")
    args = ("ingest", "flaky", str(dataset), "--atomic", f"{WORK}:chunk")
    code, out, err = finish(sluice(*args, env={"CG_FAIL": str(broken)}))
    assert code == 1
    assert "Traceback" not in out + err, err  # an expected failure: reported, not raised
    assert out.splitlines()[-3:] == ["2\t: 63 / 64", "3\t: 7 / 8", "4\t: 0 / 1"]
    state = open_table("flaky")
    assert state.failures == {
        (2, GRID.index(2, (1, 2, 3))): "RuntimeError: injected failure at 2 1 2 3"
    }
    assert (2, (1, 2, 3)) not in ran(count)
    report = (sluice_home / "chunkedgraph" / "flaky" / "report.md").read_text()
    assert "- layer 2 [1, 2, 3]: RuntimeError: injected failure at 2 1 2 3" in report

    flow_run = _last_flow_run(prefect_api, "flaky")
    assert flow_run["state"]["type"] == "FAILED"  # work left undone: the run is not Completed
    message = (
        f"1 chunks failed (see {sluice_home / 'chunkedgraph' / 'flaky' / 'report.md'}); "
        "`sluice chunkedgraph requeue flaky` reruns"
    )
    assert message in flow_run["state"]["message"]
    assert err.strip().splitlines()[-1] == f"incomplete: {message}"  # the line on the CLI

    broken.unlink()  # the cause was external and is gone
    code, out, err = finish(sluice("requeue", "flaky"))
    assert code == 0, err
    assert out.splitlines()[-3:] == ["2\t: 64 / 64", "3\t: 8 / 8", "4\t: 1 / 1"]
    entries = ran(count)
    assert len(entries) == len(ALL_CHUNKS) and set(entries) == ALL_CHUNKS
    assert entries[-3:] == [(2, (1, 2, 3)), (3, (0, 1, 1)), (4, (0, 0, 0))]
    assert open_table("flaky").failures == {}


def _last_flow_run(api: str, table: str) -> dict:
    import httpx

    response = httpx.post(
        f"{api}/flow_runs/filter",
        json={"flow_runs": {"name": {}}, "sort": "START_TIME_DESC", "limit": 50},
    )
    runs = [r for r in response.json() if r["parameters"].get("table") == table]
    return runs[0]


def test_raw_reaches_callable_and_command_work(prefect_api, sluice_home, dataset, tmp_path):
    seen = tmp_path / "seen.txt"
    command = f"sh -c 'echo $USE_RAW_EDGES $USE_RAW_COMPONENTS $TEST_RUN >> {seen}'"
    code, out, err = finish(
        sluice("ingest", "raw-cmd", str(dataset), "--raw", "--test", "--command", command)
    )
    assert code == 0, err
    assert seen.read_text().splitlines() == ["1 1 1"] * 9  # 8 children and their parent
    code, out, err = finish(
        sluice("ingest", "plain-cmd", str(dataset), "--test", "--command", command)
    )
    assert code == 0, err
    assert seen.read_text().splitlines()[9:] == ["0 0 1"] * 9


def test_dask_local_cluster_runs_the_batches(prefect_api, sluice_home, dataset, count):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        dashboard_address=None,
    ) as cluster:
        summary = run_ingest(
            "on-dask", str(dataset), work=CALLABLE, dask_address=cluster.scheduler_address
        )
    assert summary == {2: [64, 64], 3: [8, 8], 4: [1, 1]}
    entries = ran(count)
    assert len(entries) == len(ALL_CHUNKS) and set(entries) == ALL_CHUNKS
    assert_parents_after_children(entries)


def test_command_work_runs_each_chunk_as_a_local_backend_job(
    prefect_api, sluice_home, dataset, tmp_path
):
    out = tmp_path / "jobs.txt"
    command = f"sh -c 'echo {{layer}} {{x}} {{y}} {{z}} >> {out}'"
    code, stdout, err = finish(
        sluice("ingest", "by-command", str(dataset), "--test", "--command", command)
    )
    assert code == 0, err
    assert stdout.splitlines()[-3:] == ["2\t: 8 / 64", "3\t: 1 / 8", "4\t: 0 / 1"]
    lines = out.read_text().splitlines()
    parent = GRID.test_parent()
    assert lines[-1] == f"3 {parent[0]} {parent[1]} {parent[2]}"
    assert sorted(lines[:-1]) == sorted(f"2 {x} {y} {z}" for x, y, z in GRID.children(3, parent))


def test_a_progress_artifact_per_layer(prefect_api, sluice_home, dataset):
    import httpx

    code, _, err = finish(sluice("ingest", "watched", str(dataset), "--noop"))
    assert code == 0, err
    response = httpx.post(
        f"{prefect_api}/artifacts/filter", json={"artifacts": {"type": {"any_": ["progress"]}}}
    )
    final = {
        artifact["description"]: artifact["data"]
        for artifact in response.json()
        if artifact["description"].startswith("watched layer")
    }
    assert final == {
        "watched layer 2: 64 / 64": 100.0,
        "watched layer 3: 8 / 8": 100.0,
        "watched layer 4: 1 / 1": 100.0,
    }


def test_a_table_name_with_a_dot_gets_a_valid_report_key(prefect_api, sluice_home, dataset):
    import httpx

    assert run_ingest("cg.v1", str(dataset), work=ChunkWork()) == {
        2: [64, 64],
        3: [8, 8],
        4: [1, 1],
    }
    response = httpx.post(
        f"{prefect_api}/artifacts/filter",
        json={"artifacts": {"key": {"any_": ["chunkedgraph-cg-v1-layers"]}}},
    )
    assert [artifact["key"] for artifact in response.json()] == ["chunkedgraph-cg-v1-layers"]


def test_state_mirrored_to_object_storage_resumes_on_an_empty_home(
    prefect_api, sluice_home, dataset, count, tmp_path, on_gcs_emulator, monkeypatch
):
    import shutil

    from sluice.chunkedgraph.tracker import ChunksFailed
    from sluice.storage import Storage

    broken = tmp_path / "broken.txt"
    broken.write_text("2 1 2 3\n")
    monkeypatch.setenv("CG_FAIL", str(broken))
    with pytest.raises(ChunksFailed, match="1 chunks failed"):
        run_ingest("mirrored", str(dataset), work=CALLABLE, state_url="gs://ws/cg-state")
    assert Storage().list("gs://ws/cg-state/mirrored") == [
        "gs://ws/cg-state/mirrored/history.json",
        "gs://ws/cg-state/mirrored/state.bin",
        "gs://ws/cg-state/mirrored/table.json",
    ]
    first = ran(count)
    assert len(first) == len(ALL_CHUNKS) - 3  # the broken chunk and its two ancestors wait

    shutil.rmtree(sluice_home)  # the flow pod is rescheduled: its disk is gone
    broken.unlink()
    summary = run_ingest(
        "mirrored", str(dataset), work=CALLABLE, state_url="gs://ws/cg-state", requeue=True
    )
    assert summary == {2: [64, 64], 3: [8, 8], 4: [1, 1]}
    assert ran(count)[len(first) :] == [(2, (1, 2, 3)), (3, (0, 1, 1)), (4, (0, 0, 0))]
    history = History.load(table_dir("mirrored"), GRID.layers)  # restored with the state
    assert len(history.runs) == 2
    assert history.samples[0].done == (0, 0, 0) and history.samples[-1].done == (64, 8, 1)
    assert (63, 7, 0) in [s.done for s in history.samples]  # the first run's end
