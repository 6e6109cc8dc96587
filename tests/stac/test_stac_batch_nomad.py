"""Pipeline mode against the Nomad API double, and what must never leak: AWS keys."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from sluice.flows.stac_batch import StacBatchIncomplete
from typer.testing import CliRunner

from sluice.backends.nomad import NomadApi
from sluice.cli import app
from sluice.ledger import open_ledger
from tests.stac.conftest import s3_objects
from tests.stac.test_stac_batch_local import ITEMS, run_batch

KEY_ID = "AKIASLUICELEAKCHECK7"
SECRET = "sluice-secret-DO-NOT-LEAK-4711"


@pytest.fixture
def distinctive_creds(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> None:
    """Credentials that are easy to find if they leak (moto accepts any)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


@pytest.fixture
def nomad_env(monkeypatch: pytest.MonkeyPatch, nomad_api) -> None:
    monkeypatch.setenv("NOMAD_ADDR", nomad_api.url)
    monkeypatch.setenv("NOMAD_TOKEN", nomad_api.token)


def leaks(text: str) -> bool:
    return KEY_ID in text or SECRET in text


def files_leaking(root: Path) -> list[str]:
    return [
        str(p) for p in root.rglob("*") if p.is_file() and leaks(p.read_bytes().decode("latin-1"))
    ]


def flow_run_texts(flow_run_id) -> list[str]:
    """Everything Prefect holds about a flow run: parameters, logs, artifacts."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return [
        json.dumps(run.parameters),
        *(log.message for log in logs),
        *(json.dumps(a.data) for a in artifacts),
    ]


def last_flow_run_id():
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(limit=1, sort="EXPECTED_START_TIME_DESC")[0].id


@pytest.mark.parametrize("backend", ["local", "nomad"])
def test_pipeline_mode_never_leaks_aws_keys(
    backend,
    prefect_api,
    sluice_home,
    tmp_path,
    stac_fixture,
    stac_api,
    bucket,
    distinctive_creds,
    nomad_api,
    nomad_env,
    pipeline_spec_dir,
):
    item_list = tmp_path / "items.txt"
    item_list.write_text("\n".join(ITEMS) + "\n")
    with pytest.raises(StacBatchIncomplete, match="1 failed"):
        run_batch(
            tmp_path,
            stac_fixture,
            stac_api,
            bucket,
            item_list=str(item_list),
            backend=backend,
            nomad_spec_dir=str(pipeline_spec_dir),
            batch_name=f"sec-{backend}",
        )
    report = tmp_path / "report"
    assert (report / "unique_fail_aoi_names.txt").read_text().split() == ["ahps-fail-nws"]
    # the jobs had the credentials (from the environment / a Nomad Variable) ...
    fingerprint = hashlib.sha256(KEY_ID.encode()).hexdigest()[:12]
    logs = sluice_home / "stac" / f"sec-{backend}" / "logs" / "pipeline"
    [log] = logs.glob("dispatch-[[]batch_name=*,aoi_name=ahps-aaa1-nws,*]-*/coordinator.stderr.0")
    assert fingerprint in log.read_text()
    assert '"aoi": ' in log.read_text()  # meta is logged ...
    # ... and no key is in any meta, job spec, log, artifact, report, ledger or output
    assert files_leaking(sluice_home) == []
    assert files_leaking(report) == []
    assert not any(leaks(body.decode("latin-1")) for body in s3_objects(bucket).values())
    assert not any(leaks(text) for text in flow_run_texts(last_flow_run_id()))
    if backend == "nomad":
        api = NomadApi(nomad_api.settings())
        jobs = api.client.jobs.get_jobs()
        dispatched = [j["ID"] for j in jobs if "/dispatch-" in j["ID"]]
        assert len(dispatched) == len(ITEMS)
        for job_id in [j["ID"] for j in jobs]:
            assert not leaks(json.dumps(api.client.job.get_job(job_id)))
        # `sluice stac-purge` removes the dispatched jobs (the seed's rules), not the parents
        result = CliRunner().invoke(app, ["stac-purge"])
        assert result.exit_code == 0, result.output
        assert f"purged {len(ITEMS)}" in result.output
        remaining = [j["ID"] for j in api.client.jobs.get_jobs()]
        assert remaining and not any("/dispatch-" in j for j in remaining)
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == SECRET


@pytest.mark.parametrize("backend", ["local", "nomad"])
def test_block_credentials_reach_jobs_but_never_the_orchestrators_environment(
    backend,
    prefect_api,
    sluice_home,
    tmp_path,
    stac_fixture,
    stac_api,
    bucket,
    s3_endpoint,
    nomad_api,
    nomad_env,
    pipeline_spec_dir,
):
    from prefect_aws import AwsClientParameters, AwsCredentials

    AwsCredentials(
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=s3_endpoint),
    ).save("stac-leak-check", overwrite=True)
    item_list = tmp_path / "items.txt"
    item_list.write_text("\n".join(ITEMS) + "\n")
    before = dict(os.environ)
    with pytest.raises(StacBatchIncomplete, match="1 failed"):
        run_batch(
            tmp_path,
            stac_fixture,
            stac_api,
            bucket,
            item_list=str(item_list),
            backend=backend,
            nomad_spec_dir=str(pipeline_spec_dir),
            batch_name=f"blk-{backend}",
            use_local_creds=False,
            # the block parameter as a deployment passes it
            aws_credentials_block={
                "$ref": {"block_document_slug": "aws-credentials/stac-leak-check"}
            },
        )
    assert dict(os.environ) == before  # no secret entered this process's environment
    # ... yet every job had the block's key (through the backend's secret channel)
    fingerprint = hashlib.sha256(KEY_ID.encode()).hexdigest()[:12]
    logs = sluice_home / "stac" / f"blk-{backend}" / "logs" / "pipeline"
    [log] = logs.glob("dispatch-[[]batch_name=*,aoi_name=ahps-aaa1-nws,*]-*/coordinator.stderr.0")
    assert fingerprint in log.read_text()
    assert files_leaking(sluice_home) == []


def test_stage_mode_on_the_nomad_double(
    prefect_api, sluice_home, tmp_path, stac_fixture, stac_api, bucket, nomad_api, nomad_env
):
    item_list = tmp_path / "items.txt"
    item_list.write_text("ahps-aaa1-nws\nahps-empty-nws\nahps-fail-nws\nahps-ddd4-usgs\n")
    with pytest.raises(StacBatchIncomplete, match="1 failed"):
        run_batch(
            tmp_path,
            stac_fixture,
            stac_api,
            bucket,
            item_list=str(item_list),
            backend="nomad",
            mode="stage",
            chunk_size=4,
            batch_name="stage-nomad",
        )
    report = tmp_path / "report"
    assert (report / "unique_fail_aoi_names.txt").read_text().split() == ["ahps-fail-nws"]
    assert (report / "unique_success_aoi_names.txt").read_text().split() == [
        "ahps-aaa1-nws",
        "ahps-ddd4-usgs",
        "ahps-empty-nws",
    ]
    assert any(
        k.endswith("ahps-aaa1-nws__nws-fim-collection__major__metrics.csv")
        for k in s3_objects(bucket)
    )
    # the chunk's first inundate attempt is ONE job for every catchment x scenario
    ledger = open_ledger()
    jobs = ledger.attempts("stac/stage-nomad/inundate")
    first = [a for a in jobs if a.item == "chunk-0000-0-0"]
    assert [a.item for a in jobs if a.item.startswith("chunk-0000-0-")] == ["chunk-0000-0-0"]
    manifest = s3_objects(bucket)[
        f"autoeval/stage-nomad/manifests/inundate/{first[0].job_name}.jsonl"
    ]
    rows = manifest.decode().splitlines()
    assert len(rows) >= 5 and all(any(i in r for r in rows) for i in ("aaa1", "ddd4", "fail"))
    names = [j["ID"] for j in NomadApi(nomad_api.settings()).client.jobs.get_jobs()]
    # the batch shared its credentials, so stage jobs ran from the job with the template,
    # as registered (no memory asked, no OOM: no sized variant)
    assert f"sluice-job-secrets/dispatch-{first[0].job_name}" in "\n".join(names)
    assert not [n for n in names if "mib" in n]


def test_a_batch_with_nothing_to_run_on_nomad_still_reports(
    prefect_api, sluice_home, tmp_path, stac_fixture, stac_api, bucket, nomad_api, nomad_env
):
    item_list = tmp_path / "items.txt"
    item_list.write_text("no-such-item\n")
    summary = run_batch(
        tmp_path,
        stac_fixture,
        stac_api,
        bucket,
        item_list=str(item_list),
        backend="nomad",
        batch_name="nothing-nomad",
        on_missing="continue",
    )
    assert summary["not_found"] == 1 and summary["admitted"] == 0
    assert (tmp_path / "report" / "not_found_aois.txt").read_text() == "no-such-item\n"
    assert (tmp_path / "report" / "unique_fail_aoi_names.txt").read_text() == "no-such-item\n"


def test_the_seeds_nomad_flags_reach_nomad_and_the_token_stays_out_of_prefect(
    prefect_api,
    sluice_home,
    tmp_path,
    stac_fixture,
    stac_api,
    bucket,
    distinctive_creds,
    nomad_api,
    pipeline_spec_dir,
    monkeypatch,
):
    for variable in ("NOMAD_ADDR", "NOMAD_TOKEN", "NOMAD_NAMESPACE"):
        monkeypatch.delenv(variable, raising=False)  # only the flags say where Nomad is
    item_list = tmp_path / "items.txt"
    item_list.write_text("ahps-aaa1-nws\n")
    argv = [
        "stac-batch", "--batch_name", "flags", "--backend", "nomad",
        "--output_root", f"s3://{bucket}/out", "--stac_api_url", stac_api,
        "--hand_index_path", str(stac_fixture / "hand_index"),
        "--benchmark_sources", "nws-fim-collection", "--item_list", str(item_list),
        "--wait_seconds", "0", "--use-local-creds", "--nomad_spec_dir", str(pipeline_spec_dir),
        "--report_dir", str(tmp_path / "report"),
        "--nomad_addr", nomad_api.url, "--nomad_token", nomad_api.token,
    ]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    dispatched = [j for j in NomadApi(nomad_api.settings()).client.jobs.get_jobs()]
    assert any("/dispatch-" in j["ID"] for j in dispatched)
    texts = flow_run_texts(last_flow_run_id())
    assert not any(nomad_api.token in text for text in texts)
    assert not [
        p
        for p in sluice_home.rglob("*")
        if p.is_file() and nomad_api.token.encode() in p.read_bytes()
    ]

    refused = CliRunner().invoke(app, [*argv, "--nomad_token_in_meta"])
    assert refused.exit_code == 2
    assert "--nomad_token_in_meta: a token in job meta" in refused.stderr
