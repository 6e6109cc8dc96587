"""Real servers for the STAC batch tests: moto's S3 server and a rustac STAC API."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from tests.conftest import free_port, start_server
from tests.nomad_double.fixture import nomad_api  # noqa: F401

BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "stac"
READY_TIMEOUT = 30.0


def _load_fixture_module():
    spec = importlib.util.spec_from_file_location("stac_make_fixture", EXAMPLES / "make_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def stac_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example fixture (collections, items, stand-in HAND index) in a temp dir."""
    return _load_fixture_module().write_fixture(tmp_path_factory.mktemp("stac-fixture"))


@pytest.fixture(scope="session")
def stac_api(stac_fixture: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``rustac serve`` on loopback with the fixture's collections and items."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    files = [stac_fixture / n for n in ("nws-fim-collection.json", "usgs-fim-collection.json")]
    process = start_server(
        [
            str(BIN / "rustac"),
            "serve",
            "--addr",
            f"127.0.0.1:{port}",
            *map(str, files),
            str(stac_fixture / "items.json"),
        ],
        url,
        tmp_path_factory.mktemp("rustac") / "rustac.log",
    )
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def s3_endpoint(moto_s3: str) -> str:
    """The moto server, which this process and its jobs reach via AWS_ENDPOINT_URL."""
    url = moto_s3
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield url
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A fresh bucket for one test."""
    name = f"sluice-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


def s3_objects(bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix``: key -> body."""
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


@pytest.fixture
def pipeline_spec_dir(tmp_path: Path, stac_api: str, s3_endpoint: str) -> Path:
    """infra/nomad's pipeline spec with the stand-in as its command (the double runs it)."""
    from sluice.backends.nomad.specs import SPEC_DIR

    spec = json.loads((SPEC_DIR / "pipeline.nomad.json").read_text())
    task = spec["Job"]["TaskGroups"][0]["Tasks"][0]
    task["Config"] = {
        "command": sys.executable,
        "args": [str(EXAMPLES / "standins.py"), "pipeline"],
    }
    task["Env"] = {**task["Env"], "STAC_API_URL": stac_api, "AWS_ENDPOINT_URL": s3_endpoint}
    folder = tmp_path / "nomad-specs"
    folder.mkdir()
    (folder / "pipeline.nomad.json").write_text(json.dumps(spec))
    return folder
