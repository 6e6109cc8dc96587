"""Runids side by side with wepppy's own evaluator, on the same GeoJSON and templates.

``wepppy/wepppy_runids.json`` is the OUTPUT of wepppy's
``WatershedCollection.validate_template`` (rogerlew/wepppy,
``wepppy/topo/watershed_collection/watershed_collection.py``; its module imports only the
standard library, so it was imported on its own in a scratch directory, never committed)
run on ``examples/watersheds/simple.geojson`` (the features of wepppy's
``tests/data/batch_runner/simple.geojson``) and ``wepppy/cases.geojson``. Sluice must give
the same runid for every feature wepppy gives one, the same error/no-error verdict, and
the same summary, except where a runid is not a safe directory name (then Sluice says why).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sluice.errors import SluiceInputError
from sluice.watersheds.features import load_features, runid_problem, validate
from sluice.watersheds.template import RunidTemplate

REPO = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((Path(__file__).parent / "wepppy" / "wepppy_runids.json").read_text())
CASES = FIXTURE["cases"]


def test_the_fixture_covers_accepted_refused_and_unsafe_templates() -> None:
    valid = [c for c in CASES if c.get("summary", {}).get("is_valid")]
    unsafe = [
        c for c in CASES for r in c.get("rows", []) if r["run_id"] and runid_problem(r["run_id"])
    ]
    assert len(CASES) >= 70 and len(valid) >= 30 and unsafe


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c['geojson'][-14:]}:{c['template']}" for c in CASES]
)
def test_sluice_renders_what_wepppy_renders(case: dict) -> None:
    if "refused" in case:
        with pytest.raises(SluiceInputError):
            RunidTemplate(case["template"])
        return
    report = validate(load_features(REPO / case["geojson"]), case["template"]).report()
    unsafe = False
    for theirs, ours in zip(case["rows"], report["rows"], strict=True):
        assert ours["index"] == theirs["index"]
        if theirs["run_id"] is None:
            assert ours["error"], f"wepppy refused feature {theirs['index']}: {theirs['error']}"
        elif why := runid_problem(theirs["run_id"]):
            unsafe = True
            assert ours["run_id"] is None and ours["error"] == why
            assert "is not a safe directory name" in why
        else:
            assert (ours["run_id"], ours["error"]) == (theirs["run_id"], None)
    if not unsafe:
        assert report["summary"] == case["summary"]


def test_runids_differing_only_in_case_and_leading_dots_are_accepted() -> None:
    features = load_features(REPO / "tests/watersheds/wepppy/cases.geojson")

    assert [w.runid for w in validate(features, "{properties['Name']}").watersheds] == [
        "Alpha",
        "alpha",
        "ALPHA",
    ]
    dotted = validate(features, "{properties['Dot']}")
    assert dotted.ok and [w.runid for w in dotted.watersheds] == [".hidden", ".Hidden", "a..b"]


def test_an_unsafe_runid_is_refused_saying_why() -> None:
    features = load_features(REPO / "tests/watersheds/wepppy/cases.geojson")

    problems = [str(p) for p in validate(features, "{properties['Path']}").problems]

    assert problems == [
        "feature 0 (id 'f0'): runid 'x/y' is not a safe directory name: "
        "it contains a path separator",
        "feature 1 (id 'f1'): runid '..' is not a safe directory name: "
        "'..' names the directory itself or its parent",
    ]
