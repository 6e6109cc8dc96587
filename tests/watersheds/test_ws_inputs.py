"""Inputs a watershed batch checks before anything starts: GeoJSON, runids, names, stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sluice.errors import SluiceInputError
from sluice.locations import case_insensitive
from sluice.watersheds.batch import check_batch_name
from sluice.watersheds.features import largest_first, load_features, validate
from sluice.watersheds.stages import (
    Stage,
    StageCommand,
    WatershedTask,
    load_catalogue,
    parse_tasks,
    stage_job,
    stages_for,
)
from sluice.watersheds.template import RunidTemplate
from tests.watersheds.conftest import EXAMPLE, SEED_RUNIDS, SEED_TEMPLATE


def feature(props: object, geometry: object = None, fid: str | None = None) -> dict:
    return {
        "type": "Feature",
        **({"id": fid} if fid else {}),
        "properties": props,
        "geometry": geometry or {"type": "Point", "coordinates": [0, 0]},
    }


def square(side: float) -> dict:
    ring = [[0, 0], [side, 0], [side, side], [0, side], [0, 0]]
    return {"type": "Polygon", "coordinates": [ring]}


def test_seed_fixture_gives_the_seed_runids() -> None:
    validation = validate(load_features(EXAMPLE / "simple.geojson"), RunidTemplate(SEED_TEMPLATE))
    assert validation.ok
    assert [w.runid for w in validation.watersheds] == SEED_RUNIDS


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON"),
        ('{"type": "Feature"}', "not a FeatureCollection"),
        ('{"type": "FeatureCollection", "features": []}', "no features"),
        ("[1, 2]", "not a FeatureCollection"),
    ],
)
def test_bad_geojson_is_named(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "w.geojson"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SluiceInputError, match=message) as raised:
        load_features(path)
    assert str(path) in str(raised.value)


def test_feature_structure_problems_name_the_features() -> None:
    features = [
        feature({"n": "a"}, fid="ok"),
        feature(["not", "an", "object"], fid="listprops"),
        {"type": "Feature", "id": "nogeom", "properties": {"n": "c"}, "geometry": None},
        feature({"n": "d"}, {"type": "Point"}, fid="nocoords"),
        "not a feature",
    ]
    validation = validate(features, RunidTemplate("{properties['n']}"))
    problems = [str(p) for p in validation.problems]
    assert problems == [
        "feature 1 (id 'listprops'): properties is not an object",
        "feature 2 (id 'nogeom'): geometry missing",
        "feature 3 (id 'nocoords'): geometry has no coordinates",
        "feature 4: not a GeoJSON Feature",
    ]
    assert [w.runid for w in validation.watersheds] == ["a"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "empty runid"),
        ("   ", "empty runid"),
        ("a/b", "not a safe directory name: it contains a path separator"),
        ("a\\b", "not a safe directory name: it contains a path separator"),
        ("..", "not a safe directory name: '..' names the directory itself or its parent"),
        (".", "not a safe directory name: '.' names the directory itself or its parent"),
        ("a\x00b", "not a safe directory name: it contains a control"),
        ("a\nb", "not a safe directory name: it contains a control"),
        ("a\u202eb", "not a safe directory name: it contains a control, format"),
        ("x" * 300, "not a safe directory name: it is longer than 255 bytes"),
    ],
)
def test_unsafe_runids_are_rejected_saying_why(value: str, problem: str) -> None:
    validation = validate([feature({"n": value}, fid="f")], RunidTemplate("{properties['n']}"))
    assert not validation.ok
    assert problem in str(validation.problems[0])
    assert "feature 0 (id 'f')" in str(validation.problems[0])


@pytest.mark.parametrize("value", [".hidden", "a..b", "...x", "Alpha beta", "Río"])
def test_runids_wepppy_accepts_and_a_directory_can_hold_are_accepted(value: str) -> None:
    validation = validate([feature({"n": value}, fid="f")], RunidTemplate("{properties['n']}"))
    assert validation.ok and validation.watersheds[0].runid == value


def test_duplicates_and_missing_properties_are_listed_together() -> None:
    features = [
        feature({"n": "Same"}, fid="a"),
        feature({"n": "same"}, fid="b"),  # differs in case only: distinct, as in wepppy
        feature({}, fid="c"),
        feature({"n": "Same"}, fid="d"),
    ]
    validation = validate(features, RunidTemplate("{properties['n']}"))
    with pytest.raises(SluiceInputError) as raised:
        validation.raise_for_problems("template")
    message = str(raised.value)
    assert "2 problem(s)" in message
    assert "feature 3 (id 'd'): runid 'Same' duplicates feature 0's" in message
    assert "feature 2 (id 'c'): property 'n' is missing" in message
    assert validation.summary() == {
        "total_features": 4,
        "errors": 1,
        "duplicate_run_ids": 1,
        "unique_run_ids": 2,
        "valid_run_ids": 3,
        "is_valid": False,
    }


def test_largest_area_runs_first() -> None:
    features = [
        feature({"n": "small"}, square(1)),
        feature({"n": "point"}),
        feature({"n": "large"}, square(3)),
        feature(
            {"n": "multi"}, {"type": "MultiPolygon", "coordinates": [[square(2)["coordinates"][0]]]}
        ),
    ]
    validation = validate(features, RunidTemplate("{properties['n']}"))
    assert [w.runid for w in largest_first(validation.watersheds)] == [
        "large",
        "multi",
        "small",
        "point",
    ]


@pytest.mark.parametrize("name", ["seed", "wepp-2026", "a_b", "abc", "x" * 29])
def test_good_batch_names(name: str) -> None:
    assert check_batch_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "ab", "Upper", "x" * 30, "-dash", "_base", "has space", "a/b", "dot.ted", "runs"]
)
def test_bad_batch_names(name: str) -> None:
    with pytest.raises(SluiceInputError, match="batch name"):
        check_batch_name(name)


def test_checkboxes_map_to_wepppy_stage_order() -> None:
    assert stages_for(list(WatershedTask)) == list(Stage)
    assert stages_for([WatershedTask.WEPP, WatershedTask.CLIMATE]) == [
        Stage.BUILD_CLIMATE,
        Stage.FETCH_RAP_TS,
        Stage.RUN_WEPP_HILLSLOPES,
        Stage.RUN_WEPP_WATERSHED,
    ]
    assert list(Stage).index(Stage.BUILD_CLIMATE) < list(Stage).index(Stage.FETCH_RAP_TS)


def test_unknown_task_is_named() -> None:
    assert parse_tasks(["Soils", " wepp"]) == [WatershedTask.SOILS, WatershedTask.WEPP]
    with pytest.raises(SluiceInputError, match="task 'hydrology': unknown"):
        parse_tasks(["soils", "hydrology"])


def test_stage_catalogue_fills_placeholders(tmp_path: Path) -> None:
    catalogue = load_catalogue(EXAMPLE / "stages.yaml")
    command = catalogue.command_for(Stage.BUILD_SOILS)
    job = stage_job(
        command,
        batch="seed",
        runid="Blue-Creek-001",
        run_dir=tmp_path,
        stage=Stage.BUILD_SOILS,
        token="t",
    )
    assert job.command[1] == str(EXAMPLE / "standin_stage.py")
    assert job.command[2:] == ["build_soils", "Blue-Creek-001"]
    assert job.workdir == str(tmp_path)
    assert job.memory_bytes == 256 * 2**20


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default:\n  command: [echo, '{nope}']\n", "unknown placeholder"),
        ("default:\n  command: [echo]\n  callable: a:b\n", "exactly one"),
        ("stages:\n  build_everything: {command: [echo]}\n", "build_everything"),
        ("default: [unclosed\n", "stage config"),
    ],
)
def test_bad_stage_config_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "stages.yaml"
    path.write_text(text)
    with pytest.raises(SluiceInputError, match="stage config") as raised:
        load_catalogue(path)
    assert message in str(raised.value)


def test_unconfigured_stage_is_named(tmp_path: Path) -> None:
    path = tmp_path / "stages.yaml"
    path.write_text(json.dumps({"stages": {"fetch_dem": {"command": ["true"]}}}))
    catalogue = load_catalogue(path)
    catalogue.require([Stage.FETCH_DEM])
    with pytest.raises(SluiceInputError, match="'build_channels': no command"):
        catalogue.require([Stage.FETCH_DEM, Stage.BUILD_CHANNELS])
    assert StageCommand(callable="os:getcwd").callable == "os:getcwd"


def test_container_settings_reach_the_job(tmp_path: Path) -> None:
    command = StageCommand(
        command=["wepppy-stage", "{stage}", "{runid}"],
        image="wepppy:2026.11",
        template={"spec": {"template": {"spec": {"volumes": [{"name": "wc1"}]}}}},
    )
    job = stage_job(
        command, batch="seed", runid="r", run_dir=tmp_path, stage=Stage.FETCH_DEM, token="t"
    )
    assert job.image == "wepppy:2026.11"
    assert job.template["spec"]["template"]["spec"]["volumes"] == [{"name": "wc1"}]
    assert job.command == ["wepppy-stage", "fetch_dem", "r"]
    assert job.name.startswith("fetch-dem-") and len(job.name) <= 63


def test_case_only_differences_collide_only_on_storage_that_folds_case(tmp_path: Path) -> None:
    features = [feature({"n": "Alpha"}, fid="a"), feature({"n": "alpha"}, fid="b")]
    template = RunidTemplate("{properties['n']}")

    assert validate(features, template).ok  # this machine's filesystems tell case apart
    assert not case_insensitive(tmp_path)
    folded = validate(features, template, fold_case=True)
    assert [str(p) for p in folded.problems] == [
        "feature 1 (id 'b'): runid 'alpha' differs only in case from feature 0's 'Alpha', "
        "and the batch's storage does not tell case apart"
    ]
    assert folded.summary()["errors"] == 1
    assert not list(tmp_path.iterdir())  # the probe left nothing behind
