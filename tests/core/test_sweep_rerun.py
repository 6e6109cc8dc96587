"""A second run of a finished sweep says so in one line and submits nothing."""

from __future__ import annotations

from sluice.flows.sweep import tiered_index_sweep

from sluice.ledger import open_ledger
from tests.core.sweep_workload import write_template
from tests.flow_logs import run_log_lines


def test_a_finished_sweep_run_again_submits_nothing_and_says_so(tmp_path, sluice_home, prefect_api):
    done_log = tmp_path / "done.log"
    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(done_log))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    parameters = dict(
        template_path=str(template),
        namespace="test",
        job_name_prefix="again",
        indexes=[0, 1, 2],
        quiet=True,
        ledger_url=url,
        report_dir=str(tmp_path / "reports"),
    )
    tiered_index_sweep(**parameters)
    ledger = open_ledger(url)
    before = ledger.last_id("sweep/test/again")
    with run_log_lines() as lines:
        summary = tiered_index_sweep(**parameters)
    assert "3 of 3 indexes already succeeded; nothing to submit" in lines
    assert ledger.last_id("sweep/test/again") == before  # no attempt recorded
    assert sorted(done_log.read_text().split()) == ["0", "1", "2"]  # none ran twice
    assert summary.succeeded == 3
    ledger.close()
