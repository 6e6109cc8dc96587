"""The done-per-layer history behind the ingest's picture: bounded, durable, deterministic."""

from __future__ import annotations

from pathlib import Path

from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.chunkedgraph.history import MAX_SAMPLES, History
from sluice.chunkedgraph.pictures import write_table_page
from sluice.chunkedgraph.tracker import TableState

LAYERS = (2, 3, 4)


def counts(n: int) -> dict[int, int]:
    return {2: n, 3: n // 8, 4: n // 64}


def test_samples_stay_bounded_and_cover_the_whole_history():
    history = History(LAYERS, every=5.0)
    history.start_run(1000.0, counts(0))
    for step in range(1, 200_001):  # 200,000 saves 5 s apart: 11.5 days of ingest
        history.record(1000.0 + 5.0 * step, counts(step), force=step == 200_000)  # the end

    assert len(history.samples) <= MAX_SAMPLES
    assert history.samples[0] == (1000.0, (0, 0, 0))  # the first run's start stays
    assert history.samples[-1] == (1000.0 + 5.0 * 200_000, (200_000, 25_000, 3125))
    gaps = [b.at - a.at for a, b in zip(history.samples, history.samples[1:], strict=False)]
    assert max(gaps) <= 2 * min(gaps[:-1])  # spread evenly, not crowded at one end
    assert history.every > 5.0


def test_a_sample_is_kept_only_when_counts_moved_and_it_is_due_unless_forced():
    history = History(LAYERS, every=5.0)
    history.start_run(0.0, counts(0))
    history.record(1.0, counts(8))  # too soon
    history.record(10.0, counts(0))  # nothing moved
    history.record(11.0, counts(16))
    history.record(12.0, counts(24), force=True)  # a run's end
    assert history.samples == [(0.0, (0, 0, 0)), (11.0, (16, 2, 0)), (12.0, (24, 3, 0))]


def test_history_survives_a_restart_and_a_resumed_run_extends_it(tmp_path: Path):
    first = History(LAYERS)
    first.start_run(100.0, counts(0))
    first.record(200.0, counts(40), force=True)
    first.save(tmp_path)

    resumed = History.load(tmp_path, LAYERS)
    resumed.start_run(5000.0, counts(40))
    assert resumed.runs == [100.0, 5000.0]
    assert [s.at for s in resumed.samples] == [100.0, 200.0, 5000.0]
    assert History.load(tmp_path, (2, 3)).samples == []  # another grid: a fresh history


def test_the_page_is_the_same_file_for_the_same_history(tmp_path: Path):
    grid = ChunkGrid((4, 4, 4))
    state = TableState(tmp_path, grid)
    state.mark_done(2, range(40))
    history = History(tuple(grid.layers))
    history.start_run(0.0, counts(0))
    history.record(600.0, state.done_count, force=True)

    first = write_table_page(tmp_path, "t", state, history).read_bytes()
    second = write_table_page(tmp_path, "t", state, history).read_bytes()
    assert first == second
    assert b"layer 2: 40 / 64" in first and b"<svg" in first
