"""Admission control: the stop threshold holds, hysteresis pauses and resumes, pacing limit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from sluice.tasks.admission import ensure_rate_limit

from sluice.backends.local import LocalBackend
from sluice.errors import SluiceInputError
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobSpec
from sluice.ledger import open_ledger
from sluice.stac.admission import AdmissionGate, GatedBackend, Pacer, active_counter

# each job records when it started and ended (its own clock readings, in its own file)
RECORD = (
    "import sys, time, pathlib; p = pathlib.Path(sys.argv[1]); "
    "p.write_text(f'{time.time()}\\n'); time.sleep(0.2); "
    "p.write_text(p.read_text() + f'{time.time()}\\n')"
)


def max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def test_gate_never_exceeds_stop_and_pauses_until_resume(sluice_home, tmp_path: Path):
    backend = LocalBackend(parallelism=12, log_dir=tmp_path / "logs")
    gate = AdmissionGate(active_counter(backend, "pipeline"), stop=5, resume=2, poll_seconds=0.5)
    marks = tmp_path / "marks"
    marks.mkdir()
    planned = [
        Planned(
            f"i{n}",
            JobSpec(
                name=f"pipeline-t-{n}", command=[sys.executable, "-c", RECORD, str(marks / str(n))]
            ),
        )
        for n in range(30)
    ]
    try:
        results = run_jobs(GatedBackend(backend, gate), open_ledger(), "stac/adm", "w", planned)
    finally:
        backend.close()
    assert all(r.outcome == "succeeded" for r in results.values())
    spans = [tuple(map(float, p.read_text().split())) for p in marks.iterdir()]
    assert len(spans) == 30
    assert max_overlap(spans) <= 5  # measured from the jobs themselves
    assert gate.stats.max_active <= 5
    assert gate.stats.pauses >= 1 and gate.stats.admitted == 30


def test_thresholds_are_validated():
    with pytest.raises(SluiceInputError, match="--resume_threshold 5 must be below"):
        AdmissionGate(lambda: 0, stop=5, resume=5)


def test_rate_limit_created_idempotently(prefect_api):
    @flow
    def make_limit(wait: float) -> str | None:
        return ensure_rate_limit("sluice-test-pacing", wait)

    assert make_limit(2.0) == "sluice-test-pacing"
    assert make_limit(4.0) == "sluice-test-pacing"
    assert make_limit(0.0) is None
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("sluice-test-pacing")
    assert limit.limit == 1 and limit.slot_decay_per_second == pytest.approx(0.25)


def test_pacer_spaces_calls_and_costs_only_the_wait():
    clock = {"now": 100.0}
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += seconds

    pace = Pacer(2.0, clock=lambda: clock["now"], sleep=sleep)
    pace()  # the first submission waits for nobody
    clock["now"] += 0.5  # the submission took 0.5 s
    pace()
    clock["now"] += 3.0  # a slow submission: no wait after it
    pace()
    assert slept == [1.5]
