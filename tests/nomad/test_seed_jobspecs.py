"""autoeval's kind of job files: parsed, registered and dispatched through python-nomad.

``jobspecs/`` holds job files written for these tests in the shapes autoeval-coordinator's
``job_defs/test`` and ``job_defs/local`` take (constraints, HCL2 variables, registry auth,
nested logging config, poststop tasks, a credential among the required meta). With
``AUTOEVAL_COORDINATOR_REPO`` set to a checkout of that repository, the same checks also
run on its own ``job_defs`` files.
"""

from __future__ import annotations

import os
from pathlib import Path

import nomad
import pytest
from nomad.api import exceptions as errors

from sluice.backends.nomad import NomadBackend
from sluice.errors import SluiceInputError
from sluice.jobs import JobSpec
from tests.nomad.test_nomad_double import finish

HERE = Path(__file__).parent / "jobspecs"
SEED = Path(os.environ.get("AUTOEVAL_COORDINATOR_REPO", "/nonexistent")) / "job_defs"
SEED_FILES = sorted(SEED.glob("*/*.nomad")) if SEED.is_dir() else []
VARIABLES = 'repo_root = "/srv/autoeval"\n'


@pytest.fixture
def client(nomad_api) -> nomad.Nomad:
    return nomad.Nomad(address=nomad_api.url, token=nomad_api.token)


def parse(client: nomad.Nomad, path: Path) -> dict:
    """``POST /v1/jobs/parse`` with the variables the local files need (as ``-var`` gives)."""
    body = {"JobHCL": path.read_text(), "Canonicalize": False}
    if "variable" in path.read_text():
        body["Variables"] = VARIABLES
    return client.jobs.request("parse", method="post", json=body).json()


def required_meta(job: dict) -> dict[str, str]:
    return {key: f"value-of-{key}" for key in job["ParameterizedJob"]["MetaRequired"]}


def test_cluster_shape_registers_and_dispatches(client):
    job = parse(client, HERE / "cluster_pipeline.nomad")
    assert job["Constraints"] == [{"LTarget": "${node.class}", "RTarget": "linux", "Operand": "="}]
    config = job["TaskGroups"][0]["Tasks"][0]["Config"]
    auth = {"username": "deploy-token", "password": "${NOMAD_META_registry_token}"}
    assert config["auth"] == [auth]
    assert config["logging"][0]["config"][0]["awslogs-stream"] == "${NOMAD_JOB_ID}"
    assert job["TaskGroups"][0]["Tasks"][0]["LogConfig"] == {"MaxFiles": 5, "MaxFileSizeMB": 20}
    client.job.register_job("pipeline", {"Job": job})

    meta = required_meta(job)
    without_token = {k: v for k, v in meta.items() if k != "nomad_token"}
    missing = r"required meta keys: \[nomad_token\]"
    with pytest.raises(errors.BadRequestNomadException, match=missing):
        client.job.dispatch_job("pipeline", meta=without_token)
    child = client.job.dispatch_job("pipeline", meta=meta)["DispatchedJobID"]
    dispatched = client.job.get_job(child)
    assert dispatched["ParentID"] == "pipeline" and dispatched["Meta"] == meta


def test_local_shape_needs_its_variable_then_runs_with_its_poststop_task(client, nomad_api):
    path = HERE / "local_stage.nomad"
    with pytest.raises(errors.BadRequestNomadException, match='Unset variable "repo_root"'):
        client.jobs.parse(path.read_text())
    job = parse(client, path)
    processor, persist = job["TaskGroups"][0]["Tasks"]
    assert processor["Config"]["volumes"] == ["/srv/autoeval/testdata:/testdata:ro"]
    assert persist["Lifecycle"] == {"Hook": "poststop", "Sidecar": False}
    client.job.register_job("hand_inundator", {"Job": job})

    meta = {**required_meta(job), "catchment_data_path": "c.parquet", "output_path": "o.tif"}
    child = client.job.dispatch_job("hand_inundator", meta=meta)["DispatchedJobID"]
    assert finish(client, child)["Status"] == "dead"
    [alloc] = client.job.get_allocations(child)
    assert alloc["ClientStatus"] == "complete"
    assert alloc["TaskStates"]["persist-logs"]["State"] == "dead"
    logs = client.client.stream_logs.stream(alloc["ID"], "processor", "stdout", plain=True)
    assert logs == "inundated c.parquet into o.tif\n"


@pytest.mark.skipif(not SEED_FILES, reason="AUTOEVAL_COORDINATOR_REPO not set")
@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_seeds_own_job_defs_register_and_dispatch(client, path):
    job = parse(client, path)
    client.job.register_job(job["ID"], {"Job": job})
    meta = required_meta(job)
    child = client.job.dispatch_job(job["ID"], meta=meta)["DispatchedJobID"]
    assert client.job.get_job(child)["Meta"] == meta


def test_the_registered_job_is_dispatched_as_it_is_and_never_given_the_token(client, nomad_api):
    job = parse(client, HERE / "cluster_pipeline.nomad")
    client.job.register_job("pipeline", {"Job": job})
    sent = {"pipeline": ["aoi", "outputs_path", "hand_index_path"]}
    meta = {"aoi": "a.gpkg", "outputs_path": "s3://b/o", "hand_index_path": "h"}
    spec = JobSpec(
        name="aoi-1", command=["pipeline"], template={"nomad": {"job": "pipeline", "meta": meta}}
    )

    seeds = NomadBackend(nomad_api.settings(), min_interval=0)
    with pytest.raises(SluiceInputError, match="requires meta nomad_token.*never sends one"):
        seeds.preflight(["pipeline"], meta=sent)  # the seed's job wants its ACL token in meta
    seeds.close()

    required = job["ParameterizedJob"]["MetaRequired"]
    job["ParameterizedJob"]["MetaRequired"] = [k for k in required if k != "nomad_token"]
    client.job.register_job("pipeline", {"Job": job})  # the job given its token otherwise
    backend = NomadBackend(nomad_api.settings(), min_interval=0)
    backend.preflight(["pipeline"], meta=sent)
    backend.submit([spec])
    [child] = [j["ID"] for j in client.jobs.get_jobs() if j["ParentID"] == "pipeline"]
    assert client.job.get_job(child)["Meta"] == meta  # as asked: no token, no extra key
    assert sorted(j["ID"] for j in client.jobs.get_jobs()) == ["pipeline", child]  # no variant
    backend.close()


@pytest.mark.skipif(not SEED_FILES, reason="AUTOEVAL_COORDINATOR_REPO not set")
def test_the_seeds_pipeline_is_dispatched_by_name_and_its_token_demand_refused(client, nomad_api):
    meta = {"aoi": "a.gpkg", "outputs_path": "s3://b/o/", "hand_index_path": "h/", "tags": "t=1"}
    spec = JobSpec(
        name="seed-aoi", command=["pipeline"], template={"nomad": {"job": "pipeline", "meta": meta}}
    )
    cluster = parse(client, SEED / "test" / "pipeline.nomad")
    client.job.register_job("pipeline", {"Job": cluster})
    backend = NomadBackend(nomad_api.settings(), min_interval=0)
    with pytest.raises(SluiceInputError, match="requires meta nomad_token.*never sends one"):
        backend.preflight(["pipeline"], meta={"pipeline": list(meta)})
    backend.close()

    local = parse(client, SEED / "local" / "pipeline.nomad")
    client.job.register_job("pipeline", {"Job": local})  # what the seed's local guide runs
    backend = NomadBackend(nomad_api.settings(), min_interval=0)
    backend.preflight(["pipeline"], meta={"pipeline": list(meta)})
    assert backend.job_memory_bytes("pipeline") == 3000 * 2**20  # its coordinator's
    backend.submit([spec])
    [child] = [j["ID"] for j in client.jobs.get_jobs() if j["ParentID"] == "pipeline"]
    assert client.job.get_job(child)["Meta"] == meta
    assert sorted(j["ID"] for j in client.jobs.get_jobs()) == ["pipeline", child]  # no variant
    backend.close()
