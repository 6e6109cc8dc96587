"""The sweep's reports, read from a real SQLite ledger a chunk at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import yaml

from sluice.jobs import JobResult, Outcome
from sluice.ledger import open_ledger
from sluice.ledger.base import PlannedAttempt
from sluice.ledger.queries import succeeded_count
from sluice.sweep.chunks import make_chunks
from sluice.sweep.config import resolve_config
from sluice.sweep.execution import SweepExecution
from sluice.sweep.pictures import MAX_BINS, SweepTally, write_sweep_reports
from sluice.sweep.plan import TierPolicy

MIB = 1 << 20
JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "r"},
    "spec": {"template": {"spec": {"containers": [{"name": "r", "command": ["true"]}]}}},
}


def _sweep(tmp_path, count: int, chunk_size: int = 400):
    template = tmp_path / "job.yaml"
    template.write_text(yaml.safe_dump(JOB))
    parameters = dict(
        template_path=str(template), source_job=None, namespace="t", start=0, count=count,
        indexes=None, index_file=None, limit=None, job_name_prefix="r", batch_label=None,
        batch_label_template="tier{tier}-chunk-{start:05d}", chunk_size=chunk_size,
        wait_timeout="1h", tier=0, schedule_start_gi=0.0625, schedule_factor=2.0, max_tier=2,
        memory=None, cpu=None, backoff_limit=0, ttl=-1, replace=False,
    )  # fmt: skip
    config, start_tier, _ = resolve_config(parameters)
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    return config, ledger, TierPolicy(start=start_tier, max_tier=2, history={})


def _record(ledger, config, indexes, tier: int, outcome: Outcome, peak_mib: int = 40) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    planned = [
        PlannedAttempt(item=str(i), job_name=f"r-{i}-t{tier}", tier=tier, memory_bytes=64 * MIB)
        for i in indexes
    ]
    ids = ledger.begin(config.run, config.workload, planned)
    ended = JobResult(
        name="-",
        outcome=outcome,
        exit_code=0 if outcome is Outcome.SUCCEEDED else 137,
        started_at=start,
        finished_at=start + timedelta(hours=1),
        peak_memory_bytes=peak_mib * MIB,
    )
    ledger.finish_many([(attempt_id, ended) for attempt_id in ids])


def test_reports_stream_every_index_in_order_with_sorted_failures_and_binned_peaks(tmp_path):
    """2,500 indexes: every tenth OOMs at tier 0 and succeeds at tier 1, index 7 fails for
    good; the files hold each index once, in order, and the peak chart is binned."""
    count = 2500
    config, ledger, policy = _sweep(tmp_path, count)
    oom = [i for i in range(count) if i % 10 == 0]
    _record(ledger, config, oom, 0, Outcome.OOM)
    _record(ledger, config, oom, 1, Outcome.SUCCEEDED, peak_mib=100)
    _record(ledger, config, [i for i in range(count) if i % 10 and i != 7], 0, Outcome.SUCCEEDED)
    _record(ledger, config, [7], 0, Outcome.FAILED)
    execution = SweepExecution(config, None, ledger, policy)  # type: ignore[arg-type]
    reports = tmp_path / "reports"
    (reports / "tier3-failures.txt").parent.mkdir()
    (reports / "tier3-failures.txt").write_text("stale\n")

    summary, failures, page = write_sweep_reports(execution, reports)

    items = [json.loads(line) for line in (reports / "items.jsonl").read_text().splitlines()]
    assert [item["index"] for item in items] == list(range(count))
    assert items[10]["tier"] == 1 and items[10]["attempts"] == 2
    assert items[7]["outcome"] == "failed" and items[7]["reason"] == "exit:137"
    assert (reports / "tier0-failures.txt").read_text() == "".join(
        f"{i}\n" for i in sorted([*oom, 7])
    )
    assert not (reports / "tier3-failures.txt").exists()
    assert failures == {0: len(oom) + 1}
    assert summary.total == count and summary.succeeded == count - 1 and summary.failed == 1
    assert summary.succeeded_by_tier == {"0": count - len(oom) - 1, "1": len(oom)}
    assert summary.attempts == count + len(oom)
    # one GiB-hour is 16 attempts of 64 MiB for an hour
    assert summary.gib_hours_succeeded == (count - 1) / 16
    assert summary.gib_hours_failed == (len(oom) + 1) / 16
    assert json.loads((reports / "summary.json").read_text()) == summary.model_dump()
    text = page.read_text()
    assert text.count("<figure") == 3 and "in bins of 3 neighbouring indexes" in text


def test_the_tally_holds_at_most_max_bins_whatever_the_span():
    tally = SweepTally(0, 10**12)
    assert -(-(10**12 + 1) // tally.width) <= MAX_BINS
    assert SweepTally(5, 5 + MAX_BINS - 1).width == 1  # up to MAX_BINS: a point per index


def test_succeeded_count_counts_newest_attempts_across_query_groups(tmp_path):
    """More items than one query takes (10,000): counted group by group in the database."""
    count = 12_001
    config, ledger, _ = _sweep(tmp_path, count, chunk_size=0)
    _record(ledger, config, range(count), 0, Outcome.OOM)
    _record(ledger, config, range(0, count, 2), 1, Outcome.SUCCEEDED)
    items = [str(i) for i in range(count)] + ["not-recorded"]
    assert succeeded_count(ledger, config.run, items) == len(range(0, count, 2))
    _record(ledger, config, [0], 2, Outcome.FAILED)  # its newest attempt no longer succeeded
    assert succeeded_count(ledger, config.run, items) == len(range(0, count, 2)) - 1


def test_chunks_of_a_range_are_ranges_not_lists():
    """A million-index range is planned as slices of itself: no list of its indexes."""
    chunks = make_chunks(
        range(10**6), chunk_size=400, batch_label=None, label_template="c{start}", tiers=(0,)
    )
    assert len(chunks) == 2500
    assert all(isinstance(chunk.indexes, range) for chunk in chunks)
    assert chunks[-1].indexes == range(999_600, 10**6)
    assert chunks[-1].label_at(0) == "c999600"
