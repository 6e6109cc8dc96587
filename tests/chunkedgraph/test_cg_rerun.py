"""A second ingest of a finished table says so in one line and runs no chunk."""

from __future__ import annotations

from sluice.flows.chunkedgraph import run_ingest

from sluice.chunkedgraph.work import ChunkWork, WorkKind
from tests.flow_logs import run_log_lines


def test_a_finished_table_ingested_again_submits_nothing_and_says_so(
    prefect_api, sluice_home, dataset
):
    noop = ChunkWork(kind=WorkKind.NOOP)
    first = run_ingest("again", str(dataset), work=noop, workers=1)
    assert first == {2: [64, 64], 3: [8, 8], 4: [1, 1]}
    with run_log_lines() as lines:
        second = run_ingest("again", str(dataset), work=noop, workers=1)
    assert second == first
    assert "again: 73 of 73 chunks already done; nothing to submit" in lines
