"""The tracker state and the batch executor, without Prefect."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.chunkedgraph.batch import Batch, ChunkKeys, run_batch
from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.schedule import Scheduler, subtree_layer
from sluice.chunkedgraph.tracker import (
    DONE,
    FAILED,
    Record,
    SegmentWriter,
    TableState,
    decode,
    encode,
    existing_table_dir,
    register_table,
    reset_table,
    status_lines,
    table_dir,
)
from sluice.errors import SluiceInputError

GRID = ChunkGrid((4, 4, 4))


def test_snapshot_plus_segments_replay_and_a_torn_record_is_ignored(tmp_path: Path):
    state = TableState(tmp_path, GRID)
    state.absorb([Record(DONE, 2, 0), Record(DONE, 2, 1), Record(FAILED, 2, 5, "boom")])
    state.save()
    writer = SegmentWriter(state.segments_dir / "a.seg")
    writer.write(Record(DONE, 2, 2))
    writer.write(Record(DONE, 3, 0))
    writer.close()
    with (state.segments_dir / "a.seg").open("ab") as torn:
        torn.write(encode(Record(DONE, 2, 9))[:5])  # killed mid-write

    again = TableState.open(tmp_path, GRID)
    assert [again.is_done(2, i) for i in range(4)] == [True, True, True, False]
    assert again.is_done(3, 0) and not again.is_done(2, 9)
    assert again.done_count == {2: 3, 3: 1, 4: 0}
    assert again.failures == {(2, 5): "boom"}
    again.save()
    assert not list(again.segments_dir.glob("*.seg"))
    assert TableState.open(tmp_path, GRID).done_count == {2: 3, 3: 1, 4: 0}


def test_done_clears_an_earlier_failure(tmp_path: Path):
    state = TableState(tmp_path, GRID)
    state.absorb([Record(FAILED, 2, 7, "x"), Record(DONE, 2, 7), Record(FAILED, 2, 7, "late")])
    assert state.failures == {} and state.is_done(2, 7)


def test_a_snapshot_of_other_bounds_is_refused(tmp_path: Path):
    TableState(tmp_path, GRID).save()
    with pytest.raises(SluiceInputError, match="differ"):
        TableState.open(tmp_path, ChunkGrid((4, 4, 5)))


def _order_respects_children(lines: list[tuple[int, tuple]], grid: ChunkGrid) -> None:
    position = {entry: n for n, entry in enumerate(lines)}
    for (layer, coords), n in position.items():
        for child in grid.children(layer, coords):
            assert position[(layer - 1, child)] < n, f"{layer} {coords} ran before child {child}"


def test_batch_runs_each_parent_right_after_its_last_child(tmp_path: Path):
    grid = ChunkGrid((5, 3, 4))
    ran: list[tuple[int, tuple]] = []
    todo = tuple((layer, i) for layer in grid.layers for i in range(grid.count(layer)))
    batch = Batch(
        "all", ChunkKeys(todo), ChunkKeys(), str(tmp_path / "t" / "segments" / "b.seg"), seed=1
    )
    outcome = run_batch(batch, grid, lambda layer, coords: ran.append((layer, coords)))
    assert len(ran) == len(todo) == len(set(ran))
    _order_respects_children(ran, grid)
    # not a layer barrier: some parent runs before the last layer-2 chunk
    last_atomic = max(n for n, (layer, _) in enumerate(ran) if layer == 2)
    assert any(layer == 3 for layer, _ in ran[:last_atomic])
    journal = list(decode((tmp_path / "t" / "segments" / "b.seg").read_bytes()))
    assert journal == [Record(DONE, layer, grid.index(layer, coords)) for layer, coords in ran]
    assert sorted(outcome.records()) == sorted(journal)


def test_a_failed_child_blocks_its_ancestors_only(tmp_path: Path):
    bad = (2, (1, 1, 1))

    def work(layer, coords):
        if (layer, coords) == bad:
            raise RuntimeError("broken chunk")

    todo = tuple((layer, i) for layer in GRID.layers for i in range(GRID.count(layer)))
    batch = Batch("all", ChunkKeys(todo), ChunkKeys(), str(tmp_path / "segments" / "b.seg"), seed=2)
    state = TableState(tmp_path, GRID)
    state.absorb(run_batch(batch, GRID, work).records())
    assert state.failures == {(2, GRID.index(2, (1, 1, 1))): "RuntimeError: broken chunk"}
    assert state.done_count == {2: 63, 3: 7, 4: 0}


def test_scheduler_resumes_from_partial_state_without_redoing(tmp_path: Path):
    grid = ChunkGrid((4, 4, 4))
    state = TableState(tmp_path, grid)
    # the first sub-tree finished entirely, a second one half, nothing above
    scheduler = Scheduler(state, batch_size=8)
    assert scheduler.subtree == 3
    first, second = scheduler.next_batch(), scheduler.next_batch()
    done = list(first.todo) + [key for key in second.todo if key[0] == 2][:4]
    state.absorb([Record(DONE, layer, index) for layer, index in done])
    scheduler = Scheduler(state, batch_size=8)
    planned = []
    while batch := scheduler.next_batch():
        planned.extend(batch.todo)
    assert not set(planned) & set(done)
    assert len(planned) == len(set(planned)) == 6 * 9 + 5  # 6 whole sub-trees, 4 + 1 left
    assert all(layer < 4 for layer, _ in planned)  # the root waits for its children


def test_subtree_layer_keeps_batches_within_size():
    million = ChunkGrid((100, 100, 100))
    assert subtree_layer(million, 4096, million.layer_count) == 6  # 8**4 = 4096 chunks
    assert subtree_layer(GRID, 4096, GRID.layer_count) == 3  # never the top layer
    assert subtree_layer(ChunkGrid((1, 1, 1)), 4096, 2) == 2


def test_reset_clears_one_table_only(sluice_home: Path):
    for table in ("alpha", "beta"):
        directory = table_dir(table)
        register_table(directory, table, "d.yml", GRID, {"kind": "noop"}, {})
        state = TableState(directory, GRID)
        state.absorb([Record(DONE, 2, 3)])
        state.save()
    reset_table("alpha")
    with pytest.raises(SluiceInputError, match="unknown"):
        existing_table_dir("alpha")
    beta = TableState.open(existing_table_dir("beta"), GRID)
    assert status_lines(beta) == ["2\t: 1 / 64", "3\t: 0 / 8", "4\t: 0 / 1"]


def test_a_table_being_ingested_cannot_be_reset_or_ingested_again(sluice_home: Path):
    from sluice.chunkedgraph.tracker import hold_table
    from sluice.ledger import RunLeased

    directory = table_dir("busy")
    register_table(directory, "busy", "d.yml", GRID, {"kind": "noop"}, {})
    with hold_table("busy") as holder:  # the ingest's lease
        with pytest.raises(RunLeased, match=f"'chunkedgraph/busy' is already running.*{holder}"):
            reset_table("busy")
        with (
            pytest.raises(RunLeased, match="'chunkedgraph/busy' is already running"),
            hold_table("busy"),
        ):
            pass
        assert directory.exists()
    reset_table("busy")
    assert not directory.exists()
