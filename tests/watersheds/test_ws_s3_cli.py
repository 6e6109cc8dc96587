"""The base project from S3 (moto server) and the `sluice watersheds` commands."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters
from sluice.flows.watersheds import create_watershed_batch
from typer.testing import CliRunner

from sluice.cli import app
from sluice.errors import SluiceInputError
from sluice.watersheds.batch import BatchLayout
from tests.cli_json import documented, printed
from tests.flow_logs import run_log_lines
from tests.watersheds.conftest import SEED_RUNIDS, SEED_TEMPLATE

runner = CliRunner()


def sluice(*args: str):
    return runner.invoke(app, ["watersheds", *args])


@pytest.fixture
def s3_base(moto_s3: str, example: Path, prefect_api: str) -> str:
    """The example base project under s3://wepp-bases/projects/base/ and a credentials block."""
    client = boto3.client(
        "s3",
        endpoint_url=moto_s3,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="wepp-bases")
    for path in (example / "base").rglob("*"):
        if path.is_file():
            key = f"projects/base/{path.relative_to(example / 'base').as_posix()}"
            client.upload_file(str(path), "wepp-bases", key)
    AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=moto_s3),
    ).save("watersheds-moto", overwrite=True)
    return "s3://wepp-bases/projects/base"


@pytest.mark.slow
def test_base_project_from_an_s3_prefix(s3_base: str, example: Path, batch_root: Path) -> None:
    create_watershed_batch(
        "froms3",
        s3_base,
        str(example / "stages.yaml"),
        root=str(batch_root),
        aws_credentials_block=AwsCredentials.load("watersheds-moto"),
    )
    base = BatchLayout(batch_root, "froms3").base
    expected = sorted(p.relative_to(example / "base") for p in (example / "base").rglob("*"))
    assert sorted(p.relative_to(base) for p in base.rglob("*")) == expected
    assert (base / "ron.nodb").read_bytes() == (example / "base" / "ron.nodb").read_bytes()


@pytest.mark.slow
def test_missing_s3_prefix_leaves_no_batch(s3_base: str, example: Path, batch_root: Path) -> None:
    with pytest.raises(SluiceInputError, match="no objects under that prefix"):
        create_watershed_batch(
            "froms3",
            "s3://wepp-bases/projects/nothing",
            str(example / "stages.yaml"),
            root=str(batch_root),
            aws_credentials_block=AwsCredentials.load("watersheds-moto"),
        )
    assert not (batch_root / "froms3").exists()


def test_validate_prints_each_runid_and_wepppys_summary(example: Path) -> None:
    result = sluice(
        "validate", "--geojson", str(example / "simple.geojson"), "--template", SEED_TEMPLATE
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        *SEED_RUNIDS,
        "total features 3, errors 0, duplicate run ids 0, unique run ids 3, valid run ids 3, "
        "is valid True",
    ]
    as_json = json.loads(
        sluice(
            "validate",
            "--geojson",
            str(example / "simple.geojson"),
            "--template",
            SEED_TEMPLATE,
            "--json",
        ).stdout
    )
    assert as_json["summary"] == {
        "total_features": 3,
        "errors": 0,
        "duplicate_run_ids": 0,
        "unique_run_ids": 3,
        "valid_run_ids": 3,
        "is_valid": True,
    }
    assert [row["run_id"] for row in as_json["rows"]] == SEED_RUNIDS


def test_validate_lists_problems_naming_features(example: Path) -> None:
    result = sluice(
        "validate",
        "--geojson",
        str(example / "simple.geojson"),
        "--template",
        "{properties['Region']}-{'x' if index else properties['Missing']}",
    )
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "problem: feature 0 (id 'A'): property 'Missing' is missing",
        "NW-x",
        "SW-x",
        "total features 3, errors 1, duplicate run ids 0, unique run ids 2, valid run ids 2, "
        "is valid False",
    ]
    assert result.stderr.splitlines() == [
        "error: runid template \"{properties['Region']}-{'x' if index else "
        "properties['Missing']}\": invalid (1 error(s), 0 duplicate runid(s)); "
        "first: feature 0 (id 'A'): property 'Missing' is missing"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template", "{__import__('os')}"], "unknown function '__import__'"),
        (["--template", "{properties['HucName'"], "runid template"),
        (["--geojson", "/no/such.geojson"], "GeoJSON '/no/such.geojson': cannot read"),
    ],
)
def test_validate_bad_input_is_one_line(example: Path, args: list[str], message: str) -> None:
    defaults = {"--geojson": str(example / "simple.geojson"), "--template": SEED_TEMPLATE}
    given = dict(zip(args[::2], args[1::2], strict=True))
    result = sluice("validate", *[x for k, v in (defaults | given).items() for x in (k, v)])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1


def test_run_with_an_unknown_task_starts_nothing(batch_root: Path) -> None:
    result = sluice("run", "seed", "--tasks", "soils,hydrology", "--root", str(batch_root))
    assert result.exit_code == 2
    assert "task 'hydrology': unknown" in result.stderr


def test_create_with_a_bad_name_starts_nothing(example: Path, batch_root: Path) -> None:
    result = sluice(
        "create",
        "My Batch",
        "--base",
        str(example / "base"),
        "--stages",
        str(example / "stages.yaml"),
        "--root",
        str(batch_root),
    )
    assert result.exit_code == 2
    assert "batch name 'My Batch'" in result.stderr
    assert not batch_root.exists()


@pytest.mark.slow
def test_create_run_status_through_the_cli(
    prefect_api: str, example: Path, batch_root: Path
) -> None:
    root = ["--root", str(batch_root)]
    created = sluice(
        "create",
        "cliseed",
        "--base",
        str(example / "base"),
        "--stages",
        str(example / "stages.yaml"),
        "--geojson",
        str(example / "simple.geojson"),
        "--template",
        SEED_TEMPLATE,
        *root,
    )
    assert created.exit_code == 0, created.output
    before = sluice("status", "cliseed", *root)
    assert before.stdout.splitlines()[:3] == [
        f"{r}\tmissing\t0/14 stages done\t-" for r in SEED_RUNIDS
    ]

    ran = sluice("run", "cliseed", "--tasks", "landuse,soils", *root)

    assert ran.exit_code == 0, ran.output
    assert "complete 3" in ran.stdout  # the selection finished
    after = sluice("status", "cliseed", *root)
    # ...but 2 of the 14 stages are on disk: status says so per run, not "complete".
    assert after.stdout.splitlines()[:3] == [
        f"{r}\tincomplete\t2/14 stages done\tbuild_landuse, build_soils" for r in SEED_RUNIDS
    ]
    assert after.stdout.splitlines()[3].startswith("total 3, complete 0, failed 0, incomplete 3")
    assert after.stdout.splitlines()[4].startswith(
        "last run (tasks landuse,soils): total 3, complete 3"
    )
    as_json = json.loads(sluice("status", "cliseed", "--json", *root).stdout)
    assert printed(as_json, "runs") == documented("watersheds status")
    assert as_json["runs"][0]["missing"][:2] == ["fetch_dem", "build_channels"]
    assert list(as_json["runs"][0]["done"]) == ["build_landuse", "build_soils"]
    with run_log_lines() as lines:
        again = sluice("run", "cliseed", "--tasks", "landuse,soils", *root)
    assert again.exit_code == 0 and "complete 3" in again.stdout
    assert "3 of 3 watersheds already succeeded; nothing to submit" in lines
