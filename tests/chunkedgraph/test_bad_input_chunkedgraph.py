"""Bad input to `sluice chunkedgraph`: each case is one line naming the input, exit 2,
nothing started or written (the shared check in tests/bad_input.py).

``{dataset}`` and the other braces in an argv are files made per test from the example.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.bad_input import BadInput, assert_refused
from tests.chunkedgraph.conftest import EXAMPLE, WORK

LONG = "t" * 300


def _spoil(folder: Path, name: str, change) -> None:
    document = yaml.safe_load((folder / "dataset.yml").read_text())
    change(document)
    (folder / name).write_text(yaml.safe_dump(document))


def _files(folder: Path) -> dict[str, str]:
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    _spoil(folder, "fanout3.yml", lambda d: d["graph_config"].update(FANOUT=3))
    _spoil(folder, "no-agg.yml", lambda d: d["ingest_config"].pop("AGGLOMERATION"))
    _spoil(folder, "ftp.yml", lambda d: d["data_source"].update(WATERSHED="ftp://h/ws"))
    _spoil(folder, "gs-absent.yml", lambda d: d["data_source"].update(WATERSHED="gs://ws/none"))
    _spoil(folder, "zero-chunk.yml", lambda d: d["graph_config"].update(CHUNK_SIZE=[0, 1, 1]))
    (folder / "broken.yml").write_text("graph_config: [1, 2\n")
    (folder / "list.yml").write_text("- 1\n")
    return {
        name.split(".")[0].replace("-", "_"): str(folder / name)
        for name in ("dataset.yml", "fanout3.yml", "no-agg.yml", "ftp.yml", "gs-absent.yml")
        + ("zero-chunk.yml", "broken.yml", "list.yml")
    } | {"missing": str(folder / "missing.yml"), "work": str(WORK)}


def ingest(*args: str, table: str = "t1", dataset: str = "{dataset}") -> list[str]:
    return ["chunkedgraph", "ingest", table, dataset, *args]


CASES = [
    # --command
    BadInput(ingest("--command", "echo 'oops"), "--command", "unbalanced quote"),
    BadInput(ingest("--command", ""), "--command", "empty command"),
    BadInput(ingest("--command", "echo {nope}"), "--command", "unknown placeholder"),
    BadInput(ingest("--command", "echo {layer"), "--command", "unclosed brace"),
    BadInput(ingest("--command", "true", "--backend", "mars"), "--backend", "unknown backend"),
    BadInput(
        ingest("--command", "true", "--dask-address", "tcp://127.0.0.1:9"),
        "--dask-address",
        "dask with command work",
    ),
    # table names (Bigtable table ids)
    BadInput(ingest("--noop", table=LONG), "table", "300-character table"),
    BadInput(ingest("--noop", table="../x"), "table", "table escapes the home"),
    BadInput(ingest("--noop", table=".hidden"), "table", "table starting with a dot"),
    BadInput(ingest("--noop", table="a\nb"), "table", "table with a newline"),
    BadInput(ingest("--noop", table="a\u202eb"), "table", "table with a bidi override"),
    BadInput(ingest("--noop", table=""), "table", "empty table"),
    BadInput(ingest("--noop", table="a b"), "table", "table with a space"),
    # sizes
    BadInput(ingest("--command", "true", "--parallelism", "0"), "--parallelism", "parallelism 0"),
    BadInput(ingest("--command", "true", "--parallelism", "-3"), "--parallelism", "negative"),
    BadInput(ingest("--command", "true", "--parallelism", "10000000"), "--parallelism", "huge"),
    BadInput(ingest("--noop", "--parallelism", "8"), "--parallelism", "parallelism for noop"),
    BadInput(ingest("--noop", "--workers", "0"), "--workers", "workers 0"),
    BadInput(ingest("--noop", "--workers", "5000"), "--workers", "workers 5000"),
    BadInput(ingest("--noop", "--batch-size", "0"), "--batch-size", "batch size 0"),
    BadInput(ingest("--noop", "--dask-workers", "0"), "--dask-workers", "dask workers 0"),
    # --dask-address: refused in seconds, before any server starts
    BadInput(ingest("--noop", "--dask-address", "tcp://127.0.0.1:9"), "--dask-address", "closed"),
    BadInput(
        ingest("--noop", "--dask-address", "tcp://192.0.2.1:8786"),
        "--dask-address",
        "unroutable address",
    ),
    BadInput(ingest("--noop", "--dask-address", "scheduler"), "--dask-address", "no scheme"),
    BadInput(
        ingest("--noop", "--dask-address", "tcp://h:99999"), "--dask-address", "port out of range"
    ),
    BadInput(ingest("--noop", "--dask-address", "x" * 5000), "--dask-address", "5000 characters"),
    # --state-url
    BadInput(ingest("--noop", "--state-url", "ftp://h/x"), "--state-url", "ftp state url"),
    BadInput(ingest("--noop", "--state-url", "/plain/path"), "--state-url", "plain path state"),
    # work choice
    BadInput(ingest(), "--noop", "no work chosen"),
    BadInput(ingest("--noop", "--atomic", "m:f"), "--noop", "two kinds of work"),
    BadInput(ingest("--atomic", "no_such_module_cg:f"), "--atomic", "unimportable module"),
    BadInput(ingest("--atomic", "nocolon"), "--atomic", "no function"),
    BadInput(ingest("--atomic", "{work}:absent"), "--atomic", "no such function"),
    BadInput(ingest("--atomic", "{work}:chunk", "--parent", "m_cg_x:f"), "--parent", "bad parent"),
    # dataset and watershed
    BadInput(ingest("--noop", dataset="{missing}"), "no such file", "missing dataset"),
    BadInput(ingest("--noop", dataset="{broken}"), "malformed YAML", "malformed dataset"),
    BadInput(ingest("--noop", dataset="{list}"), "expected a mapping", "dataset not a mapping"),
    BadInput(ingest("--noop", dataset="{fanout3}"), "FANOUT", "fanout 3"),
    BadInput(ingest("--noop", dataset="{zero_chunk}"), "CHUNK_SIZE", "zero chunk size"),
    BadInput(ingest("--noop", "--raw", dataset="{no_agg}"), "--raw", "raw without agglomeration"),
    BadInput(ingest("--noop", dataset="{ftp}"), "ftp://", "unsupported scheme"),
    BadInput(ingest("--noop", dataset="{gs_absent}"), "gs://ws/none/info", "absent gs object"),
    # other commands
    BadInput(["chunkedgraph", "status", "nope"], "table 'nope'", "status of an unknown table"),
    BadInput(["chunkedgraph", "status", LONG], "table", "status of a 300-character table"),
    BadInput(["chunkedgraph", "requeue", "nope"], "table 'nope'", "requeue an unknown table"),
    BadInput(
        ["chunkedgraph", "requeue", "nope", "--parallelism", "0"], "--parallelism", "requeue 0"
    ),
    BadInput(["chunkedgraph", "reset", "nope"], "table 'nope'", "reset an unknown table"),
    BadInput(["chunkedgraph", "reset", "../.."], "table", "reset outside the home"),
]


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_refused(case: BadInput, tmp_path: Path, on_gcs_emulator: str) -> None:
    files = _files(tmp_path / "in")
    argv = [
        re.sub(r"^\{(\w+)\}", lambda m: files.get(m.group(1), m.group(0)), part)
        for part in case.argv
    ]
    assert_refused(
        BadInput(argv, case.names, case.id),
        tmp_path / "home",
        watched=[tmp_path / "in"],
        env={"STORAGE_EMULATOR_HOST": on_gcs_emulator},
    )
