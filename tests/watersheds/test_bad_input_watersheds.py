"""Bad input for `sluice watersheds create|validate|run|status`: one line naming the input,
exit 2, no server, no batch directory, no file (tests/bad_input.py).

``{ex}`` is a private copy of examples/watersheds, ``{root}`` a batch root holding the
valid batch ``seed`` (made on disk, no server), ``{file}`` a regular file and ``{junk}``
files that are not GeoJSON FeatureCollections.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sluice.watersheds.batch import BatchLayout, BatchState, utcnow
from sluice.watersheds.features import checksum
from sluice.watersheds.stages import load_catalogue
from tests.bad_input import BadInput, assert_refused
from tests.watersheds.conftest import EXAMPLE, SEED_TEMPLATE

GEO = "{ex}/simple.geojson"
CASES_GEO = str(Path(__file__).parent / "wepppy" / "cases.geojson")
ROOT = ("--root", "{root}")


def V(*argv: str, names: str, geojson: str = GEO) -> BadInput:  # noqa: N802 - a table row
    return BadInput(("watersheds", "validate", "--geojson", geojson, *argv), names)


def C(*argv: str, names: str) -> BadInput:  # noqa: N802 - a table row
    return BadInput(("watersheds", "create", *argv), names)


def RUN(*argv: str, names: str) -> BadInput:  # noqa: N802 - a table row
    return BadInput(("watersheds", "run", *argv), names)


BASE = ("--base", "{ex}/base", "--stages", "{ex}/stages.yaml")
OK_CREATE = (*BASE, *ROOT)
CASES = [
    BadInput(("watersheds", "validate"), "validate"),
    V(names="validate"),
    V("--template", "", names="validate"),
    V("--template", "   ", names="runid template"),
    V("--template", "{__import__('os')}", names="runid template"),
    V("--template", "{properties['HucName'].lower()}", names="runid template"),
    V("--template", "{index:>99999999}", names="runid template"),
    V("--template", "{zfill(index, 99999999)}", names="runid template"),
    V("--template", "{[[0]*9999]*9999}", names="runid template"),
    V("--template", "{[[[0]*999]*999]*999}", names="runid template"),
    V("--template", "{'%099999999d' % index}", names="runid template"),
    V("--template", "{" + "not " * 2000 + "index}", names="runid template"),
    V("--template", "{" + "-" * 5000 + "index}", names="runid template"),
    V("--template", "x" * 20000, names="runid template"),
    V("--template", "{slug}", names="runid template"),
    V("--template", "{index", names="runid template"),
    V("--template", "index}", names="runid template"),
    V("--template", "{properties['Region']}", names="runid template"),
    V("--template", "{properties['Missing']}", names="runid template"),
    V("--template", "{properties['Path']}", names="runid template", geojson=CASES_GEO),
    V("--template", "{properties['Empty']}", names="runid template", geojson=CASES_GEO),
    V("--template", "{properties['Region']}", "--json", names="runid template"),
    V("--template", SEED_TEMPLATE, names="GeoJSON", geojson="/no/such.geojson"),
    V("--template", SEED_TEMPLATE, names="GeoJSON", geojson="{ex}"),
    V("--template", SEED_TEMPLATE, names="GeoJSON", geojson="{junk}/not.json"),
    V("--template", SEED_TEMPLATE, names="GeoJSON", geojson="{junk}/empty.geojson"),
    V("--template", SEED_TEMPLATE, names="GeoJSON", geojson="{junk}/binary.geojson"),
    V("--template", SEED_TEMPLATE, names="GeoJSON", geojson="{junk}/list.geojson"),
    V("--template", SEED_TEMPLATE, names="GeoJSON", geojson="{junk}/fifo"),
    BadInput(("watersheds", "validate", "--batch", "nosuch", *ROOT), "batch 'nosuch'"),
    BadInput(("watersheds", "validate", "--batch", "../x", *ROOT), "batch name"),
    BadInput(("watersheds", "validate", "--batch", "seed", "--root", "{file}"), "root"),
    C("My Batch", *OK_CREATE, names="batch name"),
    C("../../x", *OK_CREATE, names="batch name"),
    C("a\nb", *OK_CREATE, names="batch name"),
    C("seed", *OK_CREATE, names="batch 'seed'"),
    C("fresh", "--base", "/nonexistent", "--stages", "{ex}/stages.yaml", *ROOT, names="base"),
    C("fresh", "--base", "{ex}/base", "--stages", "/nonexistent.yaml", *ROOT, names="stage config"),
    C("fresh", "--base", "{ex}/base", "--stages", "{junk}/fifo", *ROOT, names="stage config"),
    C(
        "fresh",
        "--base",
        "{ex}/base",
        "--stages",
        "{junk}/bad-placeholder.yaml",
        *ROOT,
        names="stage config",
    ),
    C(
        "fresh",
        "--base",
        "{ex}/base",
        "--stages",
        "{junk}/quoted-placeholder.yaml",
        *ROOT,
        names="stage config",
    ),
    C("fresh", *OK_CREATE, "--template", SEED_TEMPLATE, names="template"),
    C(
        "fresh",
        *OK_CREATE,
        "--geojson",
        GEO,
        "--template",
        "{properties['Region']}",
        names="runid template",
    ),
    C("fresh", *BASE, "--root", "{file}", names="root"),
    C("fresh", *BASE, "--root", "{file}/x", names="root"),
    RUN("nosuch", *ROOT, names="batch 'nosuch'"),
    RUN("seed", "--tasks", "soils,hydrology", *ROOT, names="task 'hydrology'"),
    RUN("seed", "--tasks", ",", *ROOT, names="tasks"),
    RUN("seed", "--pool-size", "0", *ROOT, names="pool_size"),
    RUN("seed", "--lanes", "999", *ROOT, names="lanes"),
    RUN("seed", "--max-chunks", "0", *ROOT, names="max_chunks"),
    RUN("seed", "--backend", "mars", *ROOT, names="backend"),
    RUN("seed", "--root", "{file}", names="root"),
    RUN("../x", *ROOT, names="batch name"),
    BadInput(("watersheds", "status", "nosuch", *ROOT), "batch 'nosuch'"),
    BadInput(("watersheds", "status", "../x", *ROOT), "batch name"),
    BadInput(("watersheds", "status", "seed", "--root", "{file}"), "root"),
]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    work = tmp_path / "work"
    example = work / "ex"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("__pycache__"))
    junk = work / "junk"
    junk.mkdir()
    (junk / "not.json").write_text("{nope")
    (junk / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    (junk / "binary.geojson").write_bytes(b"\x00\xff\xfe" * 100)
    (junk / "list.geojson").write_text("[1, 2]")
    os.mkfifo(junk / "fifo")  # would block a plain read forever
    (junk / "bad-placeholder.yaml").write_text('default: {command: ["echo", "{nope}"]}\n')
    (junk / "quoted-placeholder.yaml").write_text(
        'default: {command: ["sh", "-c", "echo \'{runid}\'"]}\n'
    )
    file = work / "a-file"
    file.write_text("not a directory")
    root = work / "root"
    layout = BatchLayout(root, "seed")
    shutil.copytree(example / "base", layout.base)
    layout.resources.mkdir()
    shutil.copyfile(example / "simple.geojson", layout.resources / "simple.geojson")
    layout.save(
        BatchState(
            name="seed",
            created_at=utcnow(),
            base_source=str(example / "base"),
            stages=load_catalogue(example / "stages.yaml"),
            geojson="resources/simple.geojson",
            geojson_sha256=checksum(layout.resources / "simple.geojson"),
            template=SEED_TEMPLATE,
        )
    )
    return {"ex": example, "junk": junk, "file": file, "root": root, "work": work}


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_watersheds_input_is_refused_before_anything_starts(
    case: BadInput, places: dict[str, Path], tmp_path: Path
) -> None:
    argv = list(case.argv)
    for key, path in places.items():
        argv = [a.replace("{" + key + "}", str(path)) for a in argv]
    line = assert_refused(BadInput(argv, case.names), tmp_path / "home", watched=[places["work"]])
    assert line.startswith("error: ")


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 40
