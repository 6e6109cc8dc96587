"""`sluice logs --backend nomad`: a recorded attempt's allocation logs, through python-nomad,
from the Nomad double."""

from __future__ import annotations

from typer.testing import CliRunner

from sluice.backends.nomad import NomadBackend
from sluice.cli import app
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobSpec, Outcome
from sluice.ledger import open_ledger


def test_logs_reads_the_allocation_logs_of_a_recorded_attempt(
    nomad_api, tmp_path, monkeypatch, sluice_home
):
    monkeypatch.setenv("NOMAD_ADDR", nomad_api.url)
    monkeypatch.setenv("NOMAD_TOKEN", nomad_api.token)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    code = "import sys; print('aoi done'); print('a warning', file=sys.stderr)"
    job = JobSpec(name="pipeline-aoi-1", command=["python3", "-c", code])
    backend = NomadBackend(nomad_api.settings(), min_interval=0)
    ledger = open_ledger(url)
    try:
        planned = [Planned(item="aoi-1", job=job)]
        results = run_jobs(backend, ledger, "stac/demo", "w", planned, timeout=120)
    finally:
        backend.close()
        ledger.close()
    assert results["aoi-1"].outcome is Outcome.SUCCEEDED
    shown = CliRunner().invoke(
        app, ["logs", "stac/demo", "aoi-1", "--backend", "nomad", "--ledger-url", url]
    )
    assert (shown.exit_code, shown.stdout) == (0, "aoi done\na warning\n"), shown.output
