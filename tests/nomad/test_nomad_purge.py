"""``purge_dispatched``: the seed's purge rules against the Nomad double."""

from __future__ import annotations

import nomad
import pytest
from typer.testing import CliRunner

from sluice.backends.nomad import NomadApi, NomadBackend, purge_dispatched
from sluice.backends.nomad.purge import purgeable
from sluice.backends.nomad.specs import SPEC_DIR, load_spec
from sluice.cli import app
from sluice.jobs import JobSpec
from tests.bad_input import BadInput, assert_refused
from tests.conftest import free_port

STAGE_META = {
    "hand_inundator": {"catchment_data_path": "c", "forecast_path": "f", "output_path": "o"},
    "fim_mosaicker": {"raster_paths": "a b", "output_path": "o", "fim_type": "extent"},
}


def test_rules():
    assert purgeable("pipeline/dispatch-1700000000-abcdef12", ["pipeline"])
    assert purgeable("hand_inundator/dispatch-[batch_name=b]-17-abcdef12", ["hand_inundator"])
    assert not purgeable("pipeline", ["pipeline"])  # the parameterized job itself
    assert not purgeable("other/dispatch-17-abcdef12", ["pipeline"])
    assert not purgeable("pipeline-periodic-17", ["pipeline"])


def idle(name: str, parent: str | None = None) -> JobSpec:
    template = {"nomad": {"job": parent, "meta": STAGE_META[parent]}} if parent else None
    return JobSpec(name=name, command=["sleep", "600"], template=template)


def test_purges_only_dispatched_stage_and_pipeline_jobs(nomad_api, tmp_path):
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    for job in ("hand_inundator", "fim_mosaicker", "sluice-job"):
        source = SPEC_DIR / f"{job}.nomad.json"
        text = source.read_text().replace('"command": "python3"', '"command": "sleep"')
        (spec_dir / source.name).write_text(text)
    backend = NomadBackend(nomad_api.settings(), spec_dir=spec_dir, min_interval=0)
    backend.submit([idle("a", "hand_inundator"), idle("b", "fim_mosaicker"), idle("keep")])
    api = NomadApi(nomad_api.settings())
    report = purge_dispatched(api, ["hand_inundator", "fim_mosaicker"])
    assert report.ok
    assert sorted(j.split("/")[0] for j in report.purged) == ["fim_mosaicker", "hand_inundator"]
    left = sorted(j["ID"] for j in api.client.jobs.get_jobs())
    assert left == ["fim_mosaicker", "hand_inundator", "sluice-job", backend.job_id("keep")]
    # Already purged (by someone else, or Nomad's GC) counts as done.
    again = purge_dispatched(api, ["hand_inundator"], job_ids=report.purged)
    assert again.ok and again.purged == []
    assert again.already_gone == sorted(j for j in report.purged if j.startswith("hand"))
    backend.close()


def test_purge_survives_api_faults(nomad_api):
    backend = NomadBackend(nomad_api.settings(), min_interval=0)
    api = NomadApi(nomad_api.settings(retry_attempts=12))
    job = load_spec("pipeline")
    job["TaskGroups"][0]["Tasks"][0]["Config"] = {"command": "sleep", "args": ["600"]}
    job["TaskGroups"][0]["Tasks"][0]["Templates"] = []
    backend.register(job)
    meta = {"aoi": "x", "outputs_path": "o", "hand_index_path": "h"}
    names = [f"aoi-{i}" for i in range(20)]
    backend.submit(
        [
            JobSpec(
                name=n, command=["pipeline"], template={"nomad": {"job": "pipeline", "meta": meta}}
            )
            for n in names
        ]
    )
    nomad_api.set_faults(0.15, seed=3)
    report = purge_dispatched(api)
    nomad_api.set_faults(0)
    assert report.ok
    assert len(report.purged) + len(report.already_gone) == 20
    assert [j["ID"] for j in api.client.jobs.get_jobs()] == ["pipeline"]
    backend.close()


def dispatched_pipelines(nomad_api, count: int) -> list[str]:
    """``count`` dispatched (idle) children of the parameterized ``pipeline`` job."""
    client = nomad.Nomad(address=nomad_api.url, token=nomad_api.token)
    job = load_spec("pipeline")
    job["TaskGroups"][0]["Tasks"][0]["Config"] = {"command": "sleep", "args": ["600"]}
    job["TaskGroups"][0]["Tasks"][0]["Templates"] = []
    client.job.register_job("pipeline", {"Job": job})
    meta = {"aoi": "x", "outputs_path": "o", "hand_index_path": "h"}
    return sorted(
        client.job.dispatch_job("pipeline", meta=meta)["DispatchedJobID"] for _ in range(count)
    )


def purge_cli(nomad_api, *flags: str):
    argv = ["stac-purge", "--nomad-addr", nomad_api.url, *flags]
    return CliRunner().invoke(app, argv, env={"NOMAD_TOKEN": nomad_api.token})


def test_the_seeds_flags(nomad_api):
    children = dispatched_pipelines(nomad_api, 5)
    dry = purge_cli(nomad_api, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines() == [
        *(f"would purge {c}" for c in children),
        "would purge 5, already gone 0",
    ]
    other = purge_cli(nomad_api, "--job-name", "hand_inundator", "-v")
    assert other.exit_code == 0 and other.stdout == "purged 0, already gone 0\n"

    done = purge_cli(
        nomad_api, "--job-name", "pipeline", "--batch-size", "2", "--batch-delay", "0", "-v"
    )
    assert done.exit_code == 0, done.output
    *lines, summary = done.stdout.splitlines()  # deletes run concurrently: any order
    assert sorted(lines) == [f"purged {c}" for c in children]
    assert summary == "purged 5, already gone 0"
    client = nomad.Nomad(address=nomad_api.url, token=nomad_api.token)
    assert [j["ID"] for j in client.jobs.get_jobs()] == ["pipeline"]


BAD = [
    BadInput(["stac-purge", "--batch-size", "0"], "--batch-size 0"),
    BadInput(["stac-purge", "--batch-size", "-5"], "--batch-size -5"),
    BadInput(["stac-purge", "--batch-size", "99999999"], "--batch-size 99999999"),
    BadInput(["stac-purge", "--batch-delay", "-1"], "--batch-delay -1"),
    BadInput(["stac-purge", "--batch-delay", "nan"], "--batch-delay nan"),
    BadInput(["stac-purge", "--batch-delay", "1e9"], "--batch-delay"),
]


@pytest.mark.parametrize("case", [c.param() for c in BAD])
def test_bad_purge_values(case, tmp_path):
    assert_refused(case, tmp_path / "home")


def test_unreachable_nomad_is_one_line(tmp_path):
    case = BadInput(
        ["stac-purge", "--nomad-addr", f"http://127.0.0.1:{free_port()}"], "is unreachable"
    )
    assert_refused(case, tmp_path / "home")
