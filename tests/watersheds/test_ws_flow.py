"""The watershed batch flows end to end on a real Prefect server and the local backend."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey
from sluice.flows.watersheds import (
    BatchIncomplete,
    create_watershed_batch,
    run_watershed_batch,
    validate_watershed_batch,
)

from sluice.errors import SluiceInputError
from sluice.jobs import Outcome
from sluice.ledger import PlannedAttempt, RunLeased, open_ledger
from sluice.ledger.lease import leased
from sluice.watersheds.batch import BatchLayout
from sluice.watersheds.inputs import check_run
from sluice.watersheds.rundir import done_stages, read_metadata
from sluice.watersheds.stages import Stage, WatershedTask
from tests.watersheds.conftest import SEED_RUNIDS, SEED_TEMPLATE

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]

FEW = [WatershedTask.LANDUSE, WatershedTask.SOILS, WatershedTask.CLIMATE]
FEW_STAGES = [Stage.BUILD_LANDUSE, Stage.BUILD_SOILS, Stage.BUILD_CLIMATE, Stage.FETCH_RAP_TS]


def create(
    example: Path, root: Path, name: str = "seed", stages: Path | None = None
) -> BatchLayout:
    create_watershed_batch(
        name,
        str(example / "base"),
        str(stages or example / "stages.yaml"),
        str(example / "simple.geojson"),
        SEED_TEMPLATE,
        root=str(root),
    )
    return BatchLayout(root, name)


def attempts(batch: str = "seed"):
    ledger = open_ledger()
    try:
        return ledger.attempts(f"watersheds/{batch}")
    finally:
        ledger.close()


def latest_artifact(key: str):
    with get_client(sync_client=True) as client:
        return client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key]))
        )[0]


def stamps(layout: BatchLayout) -> dict[str, dict[str, str]]:
    return {r: done_stages(layout.run_dir(r)) for r in SEED_RUNIDS}


def test_seed_batch_runs_then_skips_done_stages_then_force_rebuilds(
    example: Path, batch_root: Path
) -> None:
    layout = create(example, batch_root)
    state = layout.load()
    assert state.geojson == "resources/simple.geojson" and state.validated_runids == 3

    summary = run_watershed_batch("seed", root=str(batch_root))

    assert (summary.total, summary.complete, summary.failed, summary.retry_eligible) == (3, 3, 0, 0)
    assert sorted(p.name for p in layout.runs.iterdir()) == SEED_RUNIDS
    for runid in SEED_RUNIDS:
        run_dir = layout.run_dir(runid)
        written = {p.stem for p in (run_dir / "outputs").iterdir()}
        assert written == {s.value for s in Stage}  # the stand-ins ran with cwd = run dir
        ron = json.loads((run_dir / "ron.nodb").read_text())
        assert ron["py/state"]["wd"] == str(run_dir)
        metadata = read_metadata(run_dir)
        assert (metadata.runid, metadata.batch_name, metadata.status) == (
            runid,
            "seed",
            "completed",
        )
        assert metadata.completed_at >= metadata.started_at and metadata.duration_seconds >= 0
        assert all(metadata.task_status[s.value] for s in Stage) and metadata.error is None
        assert metadata.job == layout.load().last_run.flow_run_id
    first = attempts()
    assert len(first) == 3 * len(Stage)
    assert {a.item for a in first} == {f"{r}/{s.value}" for r in SEED_RUNIDS for s in Stage}
    assert {a.outcome for a in first} == {Outcome.SUCCEEDED}
    saved = layout.load().last_run
    assert saved.summary.complete == 3 and saved.finished_at is not None and not saved.failures
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("sluice-watersheds-seed").limit == 3
    table = latest_artifact("watersheds-seed-summary")
    assert {"state": "complete", "runs": 3} in json.loads(table.data)
    assert "**3 / 3** runs complete" in latest_artifact("watersheds-seed-report").data
    before = stamps(layout)

    again = run_watershed_batch("seed", root=str(batch_root))

    assert again.complete == 3
    assert len(attempts()) == len(first)  # nothing re-ran
    assert stamps(layout) == before

    rebuilt = run_watershed_batch("seed", force_rebuild=True, root=str(batch_root))

    assert rebuilt.complete == 3
    assert len(attempts()) == 2 * len(first)
    after = stamps(layout)
    assert all(after[r][s] > before[r][s] for r in SEED_RUNIDS for s in before[r])


def failing_stages(example: Path, runid: str) -> Path:
    """The example's stage commands, with build_soils failing for ``runid``."""
    config = yaml.safe_load((example / "stages.yaml").read_text())
    config["stages"] = {
        "build_soils": {**config["default"], "env": {"STANDIN_FAIL_RUNIDS": runid}},
    }
    path = example / "failing.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_failing_watershed_never_stops_its_siblings(example: Path, batch_root: Path) -> None:
    layout = create(example, batch_root, stages=failing_stages(example, "Cedar-Grove-002"))

    with pytest.raises(BatchIncomplete, match="1 of 3 watersheds failed"):
        run_watershed_batch("seed", tasks=FEW, root=str(batch_root))

    by_item = {a.item: a for a in attempts()}
    assert by_item["Cedar-Grove-002/build_landuse"].outcome is Outcome.SUCCEEDED
    assert by_item["Cedar-Grove-002/build_soils"].reason == "exit:4"
    assert "Cedar-Grove-002/build_climate" not in by_item  # later stages skipped
    assert "Cedar-Grove-002/fetch_rap_ts" not in by_item
    for sibling in ("Blue-Creek-001", "Juniper-Basin-003"):
        assert all(by_item[f"{sibling}/{s.value}"].outcome is Outcome.SUCCEEDED for s in FEW_STAGES)
        assert read_metadata(layout.run_dir(sibling)).status == "completed"
    failed = read_metadata(layout.run_dir("Cedar-Grove-002"))
    assert failed.status == "failed" and failed.error["stage"] == "build_soils"
    assert failed.task_status["build_landuse"] and failed.task_status["build_soils"] is None
    last = layout.load().last_run
    assert (last.summary.complete, last.summary.failed, last.summary.retry_eligible) == (2, 1, 1)
    assert "exit:4" in last.failures["Cedar-Grove-002"]

    state = layout.load()  # the operator fixes the configuration; the retry runs only what's left
    state.stages.stages.clear()
    layout.save(state)
    summary = run_watershed_batch("seed", tasks=FEW, root=str(batch_root))

    assert summary.complete == 3 and summary.retry_eligible == 0
    retried = [a.item for a in attempts()[len(by_item) :]]
    assert retried == [f"Cedar-Grove-002/{s.value}" for s in FEW_STAGES[1:]]


def test_the_worker_pool_limit_holds(example: Path, batch_root: Path) -> None:
    create(example, batch_root)

    run_watershed_batch(
        "seed", tasks=[WatershedTask.WEPP], pool_size=1, lanes=3, root=str(batch_root)
    )

    spans = sorted((a.started_at, a.finished_at) for a in attempts())
    assert len(spans) == 6
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("sluice-watersheds-seed").limit == 1


def test_a_running_batch_refuses_a_second_run(example: Path, batch_root: Path) -> None:
    layout = create(example, batch_root)

    with (
        leased("watersheds/seed") as holder,  # another run of the batch, alive
        pytest.raises(
            RunLeased, match=f"run 'watersheds/seed' is already running: held by {holder}"
        ),
    ):
        run_watershed_batch("seed", root=str(batch_root))

    assert list(layout.runs.iterdir()) == [] and attempts() == []


def test_callable_stages_run_in_process(example: Path, batch_root: Path) -> None:
    stages = example / "callable.yaml"
    stages.write_text(
        yaml.safe_dump({"default": {"callable": "tests.watersheds.stage_callables:record"}})
    )
    layout = create(example, batch_root, stages=stages)

    run_watershed_batch("seed", tasks=[WatershedTask.LANDUSE], root=str(batch_root))

    for runid in SEED_RUNIDS:
        assert (layout.run_dir(runid) / "build_landuse.callable").read_text() == runid
    assert [a.outcome for a in attempts()] == [Outcome.SUCCEEDED] * 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch": "Bad Name"}, "batch name 'Bad Name'"),
        ({"base": "/no/such/base"}, "base project '/no/such/base': no such directory"),
        ({"geojson": "/no/such.geojson"}, "cannot read"),
        ({"template": "{properties['Nope']}"}, "feature 0 (id 'A'): property 'Nope' is missing"),
        ({"template": "{properties['Region']}"}, "duplicates"),
        ({"template": "{os.getcwd()}"}, "attribute access"),
        ({"template": "{shout(properties['HucName'])}"}, "unknown function 'shout'"),
        ({"template": "{replace(properties['HucName'], ' ', '/')}"}, "path separator"),
    ],
)
def test_bad_create_input_starts_nothing(
    example: Path, batch_root: Path, change: dict, message: str
) -> None:
    arguments = {
        "batch": "seed",
        "base": str(example / "base"),
        "stage_config": str(example / "stages.yaml"),
        "geojson": str(example / "simple.geojson"),
        "template": SEED_TEMPLATE,
        "root": str(batch_root),
    } | change
    with pytest.raises(SluiceInputError) as raised:
        create_watershed_batch(**arguments)
    assert message in str(raised.value)
    assert not batch_root.exists() or not any(batch_root.iterdir())


def test_bad_run_input_starts_nothing(example: Path, batch_root: Path) -> None:
    layout = create(example, batch_root)
    with pytest.raises(SluiceInputError, match="batch 'other': not found"):
        run_watershed_batch("other", root=str(batch_root))
    with pytest.raises(SluiceInputError, match="tasks: select at least one"):
        run_watershed_batch("seed", tasks=[], root=str(batch_root))
    (layout.dir / "resources" / "simple.geojson").write_text("{broken")
    with pytest.raises(SluiceInputError, match="not valid JSON"):
        run_watershed_batch("seed", root=str(batch_root))
    assert list(layout.runs.iterdir()) == [] and attempts() == []


def test_validate_flow_stores_a_valid_template_only(example: Path, batch_root: Path) -> None:
    create_watershed_batch(
        "later", str(example / "base"), str(example / "stages.yaml"), root=str(batch_root)
    )
    layout = BatchLayout(batch_root, "later")
    with pytest.raises(SluiceInputError, match="no GeoJSON yet"):
        validate_watershed_batch("later", SEED_TEMPLATE, root=str(batch_root))

    # An invalid template is stored with status invalid, as wepppy does; the flow completes.
    invalid = validate_watershed_batch(
        "later", "{properties['Region']}", str(example / "simple.geojson"), str(batch_root)
    )
    assert invalid["status"] == "invalid"
    assert invalid["summary"] == {
        "total_features": 3,
        "errors": 0,
        "duplicate_run_ids": 1,
        "unique_run_ids": 2,
        "valid_run_ids": 3,
        "is_valid": False,
    }
    state = layout.load()
    assert (state.template, state.template_status) == ("{properties['Region']}", "invalid")
    assert state.template_summary == invalid["summary"] and state.validated_runids is None
    with pytest.raises(SluiceInputError, match="duplicates"):
        check_run("later", list(WatershedTask), str(batch_root), 3, None, 24)

    report = validate_watershed_batch(
        "later", SEED_TEMPLATE, str(example / "simple.geojson"), str(batch_root)
    )

    assert [row["run_id"] for row in report["rows"]] == SEED_RUNIDS
    assert report["status"] == "valid" and report["summary"]["is_valid"] is True
    state = layout.load()
    assert (state.template, state.geojson, state.validated_runids, state.template_status) == (
        SEED_TEMPLATE,
        "resources/simple.geojson",
        3,
        "valid",
    )
    rows = json.loads(latest_artifact("watersheds-later-runids").data)
    assert [row["run_id"] for row in rows] == SEED_RUNIDS


def test_a_job_left_running_by_a_stopped_run_is_adopted_by_name(
    example: Path, batch_root: Path
) -> None:
    create(example, batch_root)
    ledger = open_ledger()
    ledger.begin(
        "watersheds/seed",
        "watersheds/seed/build_landuse",
        [PlannedAttempt(item="Blue-Creek-001/build_landuse", job_name="build-landuse-orphan")],
    )
    ledger.close()

    run_watershed_batch("seed", tasks=[WatershedTask.LANDUSE], root=str(batch_root))

    mine = [a for a in attempts() if a.item == "Blue-Creek-001/build_landuse"]
    assert [(a.job_name, a.outcome) for a in mine] == [
        ("build-landuse-orphan", Outcome.LOST),
        ("build-landuse-orphan", Outcome.SUCCEEDED),
    ]
    assert len(attempts()) == 4
