"""The user's registered ``pipeline`` job: dispatched by name as it is; a sized variant only
when an OOM needs more memory than it gives (issue 10.5).

The job is registered the way autoeval's users do it, from an HCL job file of the seed's
shape (``jobspecs/pipeline.nomad``) through python-nomad (``/v1/jobs/parse``, then register),
before the batch runs; the batch then runs against the Nomad double.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import nomad
import pytest
from sluice.flows.stac_batch import StacBatchIncomplete

from sluice.backends.nomad.specs import SPEC_DIR
from sluice.ledger import open_ledger
from sluice.ledger.base import Attempt
from sluice.stac.execution import MemoryTiers
from tests.nomad.test_nomad_backend import needs_cgroups
from tests.stac.conftest import EXAMPLES
from tests.stac.test_stac_batch_local import run_batch
from tests.stac.test_stac_batch_nomad import KEY_ID, SECRET, distinctive_creds, nomad_env  # noqa: F401

JOB_FILE = Path(__file__).parent / "jobspecs" / "pipeline.nomad"
STANDINS = EXAMPLES / "standins.py"
MIB = 2**20
ITEM = "ahps-aaa1-nws"
SEED_META = {"aoi", "outputs_path", "hand_index_path", "benchmark_sources", "tags"}


def register_pipeline(nomad_api, stac_api: str, s3_endpoint: str, **variables: object) -> dict:
    """Parse the job file with these HCL2 variables (as ``nomad job run -var``) and register it."""
    client = nomad.Nomad(address=nomad_api.url, token=nomad_api.token, timeout=60)
    values = {
        "python": sys.executable,
        "standins": str(STANDINS),
        "stac_api_url": stac_api,
        "s3_endpoint": s3_endpoint,
        **variables,
    }
    body = {
        "JobHCL": JOB_FILE.read_text(),
        "Variables": "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()),
        "Canonicalize": False,
    }
    job = client.jobs.request("parse", method="post", json=body).json()
    client.job.register_job(job["ID"], {"Job": job})
    return job


def nomad_jobs(nomad_api) -> list[dict]:
    client = nomad.Nomad(address=nomad_api.url, token=nomad_api.token, timeout=60)
    return [client.job.get_job(stub["ID"]) for stub in client.jobs.get_jobs()]


def memory_mib(job: dict) -> dict[str, int]:
    return {t["Name"]: t["Resources"]["MemoryMB"] for g in job["TaskGroups"] for t in g["Tasks"]}


def no_credentials_in(jobs: list[dict]) -> None:
    for job in jobs:
        text = json.dumps(job)
        assert KEY_ID not in text and SECRET not in text
        if job.get("ParentID"):  # a dispatch: the seed's meta keys, nothing else
            assert set(job["Meta"]) <= SEED_META


@pytest.fixture
def on_nomad(
    prefect_api,
    sluice_home,
    tmp_path,
    stac_fixture,
    stac_api,
    s3_endpoint,
    bucket,
    distinctive_creds,  # noqa: F811
    nomad_api,
    nomad_env,  # noqa: F811
):
    """``register(**variables)`` the job file, then ``run(batch, **params)`` one item's batch."""
    items = tmp_path / "items.txt"
    items.write_text(f"{ITEM}\n")

    class OnNomad:
        @staticmethod
        def register(**variables: object) -> dict:
            return register_pipeline(nomad_api, stac_api, s3_endpoint, **variables)

        @staticmethod
        def run(batch: str, **params: object) -> dict:
            return run_batch(
                tmp_path,
                stac_fixture,
                stac_api,
                bucket,
                item_list=str(items),
                backend="nomad",
                batch_name=batch,
                **params,
            )

        jobs = staticmethod(lambda: nomad_jobs(nomad_api))

    return OnNomad


def test_the_registered_job_is_dispatched_by_name_and_nothing_else_is_registered(
    on_nomad, tmp_path
):
    registered = on_nomad.register()
    summary = on_nomad.run("as-registered", nomad_spec_dir=str(tmp_path / "no-specs"))
    assert summary["success"] == 1
    jobs = on_nomad.jobs()
    [child] = [j for j in jobs if j.get("ParentID")]
    assert child["ParentID"] == "pipeline"
    assert child["ID"].startswith("pipeline/dispatch-pipeline-as-registered-")
    assert sorted(j["ID"] for j in jobs) == ["pipeline", child["ID"]]  # no variant
    assert memory_mib(child) == memory_mib(registered) == {"coordinator": 512, "persist-logs": 32}
    assert set(child["Meta"]) == SEED_META  # the meta the job declares, as the seed sends it
    no_credentials_in(jobs)
    [attempt] = open_ledger().attempts("stac/as-registered")
    assert (attempt.tier, attempt.memory_bytes) == (0, None)  # the registered job's own


@needs_cgroups
def test_an_oom_on_the_registered_job_retries_once_on_one_variant_a_tier_up(
    on_nomad, tmp_path, sluice_home
):
    # 300 MiB touched: killed at the registered 256 MiB, enough at the next tier's 512 MiB
    on_nomad.register(memory=256, hog_mib=300)
    summary = on_nomad.run("escalates", max_tier=3)
    assert summary["success"] == 1
    jobs = {j["ID"]: j for j in on_nomad.jobs()}
    parents = sorted(i for i, j in jobs.items() if not j.get("ParentID"))
    assert parents == ["pipeline", "pipeline-512mib"]  # exactly one variant, named by its size
    assert memory_mib(jobs["pipeline-512mib"]) == {"coordinator": 512, "persist-logs": 32}
    first, retry = open_ledger().attempts("stac/escalates")
    assert (first.outcome, first.tier, first.memory_bytes) == ("oom", 0, None)
    assert (retry.outcome, retry.tier, retry.memory_bytes) == ("succeeded", 1, 512 * MIB)
    children = {j["ParentID"]: j for j in jobs.values() if j.get("ParentID")}
    assert children["pipeline"]["ID"].startswith(f"pipeline/dispatch-{first.job_name}-")
    variant_child = children["pipeline-512mib"]["ID"]
    assert variant_child.startswith(f"pipeline-512mib/dispatch-{retry.job_name}-")
    no_credentials_in(list(jobs.values()))
    # the report reads the attempt that counts; the OOM's log is kept aside
    report = tmp_path / "report"
    assert (report / "unique_success_aoi_names.txt").read_text().split() == [ITEM]
    assert not (report / "job_errors_aois.txt").read_text().split()
    superseded = sluice_home / "stac" / "escalates" / "superseded-logs"
    assert "OOM" in "".join(p.read_text() for p in superseded.rglob("coordinator.stderr.0"))


@needs_cgroups
def test_with_max_tier_0_an_oom_is_final_and_registers_nothing(on_nomad):
    on_nomad.register(memory=256, hog_mib=300)
    with pytest.raises(StacBatchIncomplete, match="1 failed"):
        on_nomad.run("final", max_tier=0)
    assert [j["ID"] for j in on_nomad.jobs() if not j.get("ParentID")] == ["pipeline"]
    [attempt] = open_ledger().attempts("stac/final")
    assert attempt.outcome == "oom"


def attempt(tier: int | None, outcome: str | None) -> Attempt:
    return Attempt(
        id=1, run="r", item="i", workload="w", job_name="j", tier=tier, memory_bytes=None,
        outcome=outcome, exit_code=None, reason=None, started_at=datetime.now(UTC),
        finished_at=None, peak_memory_bytes=None, message=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("base", "max_tier", "last", "resume", "memory"),
    [
        (256 * MIB, 2, None, 0, None),  # first run: the registered job's own memory
        (256 * MIB, 2, attempt(0, "oom"), 1, 512 * MIB),  # killed for memory: a tier up
        (256 * MIB, 2, attempt(1, "oom"), 2, 1024 * MIB),
        (256 * MIB, 2, attempt(2, "oom"), 2, 1024 * MIB),  # no higher tier: stays
        (256 * MIB, 2, attempt(1, "failed"), 1, 512 * MIB),  # needed the memory: keeps it
        (256 * MIB, 0, attempt(0, "oom"), 0, None),  # max_tier 0: an OOM is final
        (256 * MIB, 1, attempt(3, "failed"), 1, 512 * MIB),  # max_tier lowered since
        (None, 2, attempt(0, "oom"), 0, None),  # no limit to raise (local processes)
        (256 * MIB, 2, attempt(None, "oom"), 1, 512 * MIB),  # a row without a tier: 0
    ],
)
def test_memory_tiers(base, max_tier, last, resume, memory):
    tiers = MemoryTiers(base, max_tier)
    assert tiers.resume(last) == resume
    assert tiers.memory_bytes(resume) == memory


@pytest.mark.slow
@needs_cgroups
def test_stage_jobs_killed_for_memory_run_again_a_tier_up(on_nomad, tmp_path):
    """Stage mode: Sluice's generic job (here registered with 128 MiB) is dispatched as it
    is; a stage job that touches 160 MiB is killed there and its entries run again at 256."""
    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("sluice-job", "sluice-job-secrets"):
        spec = json.loads((SPEC_DIR / f"{name}.nomad.json").read_text())
        spec["Job"]["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"] = 128
        (specs / f"{name}.nomad.json").write_text(json.dumps(spec))
    hog = (
        "import runpy, sys; hog = bytearray(160 * 2**20); del hog; "
        f"sys.argv = ['standins', *sys.argv[1:]]; runpy.run_path({str(STANDINS)!r}, "
        "run_name='__main__')"
    )
    summary = on_nomad.run(
        "stage-oom",
        mode="stage",
        nomad_spec_dir=str(specs),
        stage_command=[sys.executable, "-c", hog],
        stage_retries=1,
    )
    assert summary["success"] == 1
    parents = sorted(j["ID"] for j in on_nomad.jobs() if not j.get("ParentID"))
    assert parents == ["sluice-job", "sluice-job-secrets", "sluice-job-secrets-256mib"]
    ledger = open_ledger()
    for stage in ("inundate", "mosaic", "agreement"):
        attempts = ledger.attempts(f"stac/stage-oom/{stage}")
        assert {(a.tier, a.outcome) for a in attempts} == {(0, "oom"), (1, "succeeded")}, stage
