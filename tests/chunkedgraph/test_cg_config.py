"""Dataset YAML and watershed info: loading from local, file:// and s3://, and bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from sluice.chunkedgraph.config import ingest_flags_env, load_grid, with_ingest_flags
from sluice.errors import SluiceInputError


def _edit(dataset: Path, change) -> Path:
    document = yaml.safe_load(dataset.read_text())
    change(document)
    dataset.write_text(yaml.safe_dump(document))
    return dataset


def test_example_gives_4x4x4_chunks_from_a_relative_file_url(dataset: Path):
    config, grid = load_grid(dataset)
    assert grid.atomic_bounds == (4, 4, 4)
    assert config.graph_config.CHUNK_SIZE == (256, 256, 128)
    assert config.data_source.DATA_VERSION == 4


def test_plain_absolute_path_and_partial_edge_chunks(dataset: Path):
    info = dataset.parent / "watershed" / "info"
    document = json.loads(info.read_text())
    document["scales"][0]["size"] = [1025, 768, 129]
    info.write_text(json.dumps(document))
    _edit(dataset, lambda d: d["data_source"].update(WATERSHED=str(info.parent)))
    assert load_grid(dataset)[1].atomic_bounds == (5, 3, 2)


def test_info_from_s3(dataset: Path, moto_s3: str, monkeypatch: pytest.MonkeyPatch):
    for key, value in {
        "AWS_ENDPOINT_URL": moto_s3,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="ws-bucket")
    s3.put_object(
        Bucket="ws-bucket",
        Key="minnie/ws/info",
        Body=(dataset.parent / "watershed" / "info").read_bytes(),
    )
    _edit(
        dataset,
        lambda d: d["data_source"].update(WATERSHED="precomputed://s3://ws-bucket/minnie/ws"),
    )
    assert load_grid(dataset)[1].atomic_bounds == (4, 4, 4)
    _edit(dataset, lambda d: d["data_source"].update(WATERSHED="s3://ws-bucket/absent"))
    with pytest.raises(SluiceInputError, match="s3://ws-bucket/absent/info"):
        load_grid(dataset)


def test_info_from_gcs_emulator(dataset: Path, on_gcs_emulator: str):
    """The real dataset YAML's watershed is on GCS (gs://), as PyChunkedGraph's helm config."""
    from sluice.storage import Storage

    info = (dataset.parent / "watershed" / "info").read_text()
    Storage().write_text("gs://ws/minnie65/ws/info", info)
    _edit(
        dataset,
        lambda d: d["data_source"].update(WATERSHED="precomputed://gs://ws/minnie65/ws"),
    )
    assert load_grid(dataset)[1].atomic_bounds == (4, 4, 4)
    _edit(dataset, lambda d: d["data_source"].update(WATERSHED="gs://ws/absent"))
    with pytest.raises(SluiceInputError, match="gs://ws/absent/info: no such file"):
        load_grid(dataset)


def test_raw_sets_pychunkedgraphs_ingest_flags(dataset: Path):
    config = load_grid(dataset)[0]
    raw = with_ingest_flags(config, raw=True, test=True)
    assert raw.ingest_config == {
        "AGGLOMERATION": "file://./agg",
        "USE_RAW_EDGES": True,
        "USE_RAW_COMPONENTS": True,
        "TEST_RUN": True,
    }
    assert ingest_flags_env(raw) == {
        "USE_RAW_EDGES": "1",
        "USE_RAW_COMPONENTS": "1",
        "TEST_RUN": "1",
    }
    plain = with_ingest_flags(config, raw=False, test=False)
    assert ingest_flags_env(plain) == {
        "USE_RAW_EDGES": "0",
        "USE_RAW_COMPONENTS": "0",
        "TEST_RUN": "0",
    }


BAD = {
    "missing yaml": (lambda ds: ds.unlink(), "no such file"),
    "malformed yaml": (lambda ds: ds.write_text("graph_config: [1, 2\n"), "malformed YAML"),
    "not a mapping": (lambda ds: ds.write_text("- 1\n"), "expected a mapping"),
    "no watershed": (
        lambda ds: _edit(ds, lambda d: d["data_source"].pop("WATERSHED")),
        "data_source.WATERSHED",
    ),
    "yaml is a directory": (lambda ds: (ds.unlink(), ds.mkdir()), "cannot read"),
    "missing info": (lambda ds: (ds.parent / "watershed" / "info").unlink(), "no such file"),
    "info is a directory": (
        lambda ds: (
            (ds.parent / "watershed" / "info").unlink(),
            (ds.parent / "watershed" / "info").mkdir(),
        ),
        "cannot read",
    ),
    "info not json": (lambda ds: (ds.parent / "watershed" / "info").write_text("{"), "not JSON"),
    "info without scales": (
        lambda ds: (ds.parent / "watershed" / "info").write_text("{}"),
        "scales",
    ),
    "zero chunk size": (
        lambda ds: _edit(ds, lambda d: d["graph_config"].update(CHUNK_SIZE=[256, 0, 128])),
        "must be positive",
    ),
    "negative chunk size": (
        lambda ds: _edit(ds, lambda d: d["graph_config"].update(CHUNK_SIZE=[-1, 256, 128])),
        "must be positive",
    ),
    "fanout 3": (
        lambda ds: _edit(ds, lambda d: d["graph_config"].update(FANOUT=3)),
        "assume FANOUT 2",
    ),
    "ftp scheme": (
        lambda ds: _edit(ds, lambda d: d["data_source"].update(WATERSHED="ftp://host/ws")),
        "ftp:// is not supported",
    ),
    "raw without agglomeration": (
        lambda ds: _edit(ds, lambda d: d["ingest_config"].pop("AGGLOMERATION")),
        "--raw: the dataset has no ingest_config.AGGLOMERATION",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_clear_error(dataset: Path, case: str):
    spoil, message = BAD[case]
    spoil(dataset)
    with pytest.raises(SluiceInputError, match=re.escape(message)) as raised:
        with_ingest_flags(load_grid(dataset)[0], raw=True, test=False)
    assert "\n" not in str(raised.value)


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SLUICE_HOME": str(home), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("sluice")), "chunkedgraph", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("case", ["fanout 3", "zero chunk size", "missing info"])
def test_cli_refuses_bad_input_before_anything_runs(dataset: Path, tmp_path: Path, case: str):
    spoil, message = BAD[case]
    spoil(dataset)
    home = tmp_path / "home"
    result = _cli("ingest", "t1", str(dataset), "--noop", home=home)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (home / "chunkedgraph").exists()  # nothing tracked, no Prefect server needed


def test_cli_refuses_a_missing_work_choice_and_unimportable_callables(dataset: Path, tmp_path):
    home = tmp_path / "home"
    result = _cli("ingest", "t1", str(dataset), home=home)
    assert result.returncode == 2 and "exactly one of --noop" in result.stderr
    result = _cli("ingest", "t1", str(dataset), "--atomic", "no_such_module:f", home=home)
    assert result.returncode == 2 and "--atomic 'no_such_module:f': cannot import" in result.stderr


@pytest.mark.parametrize("command", ["status", "requeue", "reset"])
def test_unknown_table_is_a_clear_error(tmp_path: Path, command: str):
    result = _cli(command, "nope", home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: table 'nope': unknown (no ingest has started it)"
