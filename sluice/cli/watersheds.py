"""`sluice watersheds create|validate|run|status`: a thin front over the watershed batch flows."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from sluice.cli.common import fail_on_input_errors
from sluice.cli.flow_options import FlowArguments, flow_command

app = typer.Typer(
    no_args_is_help=True, help="Watershed batches (replaces the WEPPcloud batch runner)."
)

Root = Annotated[
    str | None, typer.Option(help="Directory holding batches (default: $SLUICE_HOME/watersheds).")
]


@app.command()
@fail_on_input_errors
@flow_command(
    "sluice.flows.watersheds",
    "create_watershed_batch",
    arguments={"batch"},
    aliases={"stage_config": ["--stages"]},
)
def create(arguments: FlowArguments) -> None:
    """Create a batch: `_base` from the base project, `resources/`, `runs/`, `batch.json`."""
    from sluice.watersheds.inputs import check_create

    given = arguments.values
    checked = check_create(
        given["batch"],
        given["base"],
        given["stage_config"],
        given["geojson"],
        given["template"],
        given["root"],
    )
    from sluice.flows.watersheds import create_watershed_batch

    create_watershed_batch(**arguments.for_the_flow())
    typer.echo(f"created {checked.layout.dir}")


@app.command()
@fail_on_input_errors
def validate(
    geojson: Annotated[str | None, typer.Option(help="Watershed FeatureCollection.")] = None,
    template: Annotated[str | None, typer.Option(help="Runid template.")] = None,
    batch: Annotated[
        str | None,
        typer.Option(help="Validate for this batch and store the result (valid or invalid)."),
    ] = None,
    root: Root = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print wepppy's result as JSON.")
    ] = False,
) -> None:
    """Print each feature's runid and wepppy's summary; an invalid template exits 2."""
    from sluice.errors import SluiceInputError
    from sluice.watersheds.template import RunidTemplate

    parse_error = None
    if template is not None:
        try:
            RunidTemplate(template)
        except SluiceInputError as exc:  # every feature fails alike, as in wepppy
            parse_error = exc
    if batch is None:
        if not geojson or not template:
            raise SluiceInputError("validate: give --geojson and --template (or --batch)")
        from sluice.watersheds.features import load_features, validate

        validation = validate(load_features(geojson), template)
        report: dict[str, Any] = {
            "template": template,
            "status": "valid" if validation.ok else "invalid",
        }
        report |= validation.report()
    else:
        from sluice.watersheds.inputs import layout_of

        layout_of(batch, root).load()  # an unknown batch is refused before a server starts
        from sluice.server import ensure_api

        ensure_api()
        from sluice.flows.watersheds import validate_watershed_batch

        report = validate_watershed_batch(batch, template, geojson, root)
    if json_output:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for row in report["rows"]:
            typer.echo(row["run_id"] if row["error"] is None else f"problem: feature {_row(row)}")
        for duplicate in report["duplicates"]:
            typer.echo(f"duplicate: {duplicate['run_id']!r} at features {duplicate['indexes']}")
        typer.echo(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report["summary"].items()))
    summary = report["summary"]
    if not summary["is_valid"]:
        stored = f"; stored as invalid with batch {batch!r}" if batch else ""
        if parse_error is not None:
            raise SluiceInputError(f"{parse_error}{stored}")
        first = report["errors"][0] if report["errors"] else None
        detail = f"; first: feature {_row(first)[:200]}" if first else ""
        raise SluiceInputError(
            f"runid template {str(report['template'])[:100]!r}: invalid "
            f"({summary['errors']} error(s), {summary['duplicate_run_ids']} duplicate runid(s))"
            f"{detail}{stored}"
        )


def _row(row: dict) -> str:
    named = f" (id {row['feature_id']!r})" if row.get("feature_id") is not None else ""
    return f"{row['index']}{named}: {row['error']}"


@app.command()
@fail_on_input_errors
@flow_command("sluice.flows.watersheds", "run_watershed_batch", arguments={"batch"})
def run(arguments: FlowArguments) -> None:
    """Run Batch: every watershed's stages in order, largest first, skipping done stages."""
    from sluice.watersheds.inputs import check_run

    given = arguments.values
    check_run(
        given["batch"],
        given["tasks"],
        given["root"],
        given["pool_size"],
        given["lanes"],
        given["max_chunks"],
    )
    from sluice.flows.watersheds import run_watershed_batch

    typer.echo(_summary_line(run_watershed_batch(**arguments.for_the_flow())))


@app.command()
@fail_on_input_errors
def status(
    batch: Annotated[str, typer.Argument(help="Batch name.")],
    root: Root = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the status as JSON (keys in docs/cli.md).")
    ] = False,
) -> None:
    """Per run: its state over the whole chain of stages and which stages are done on disk."""
    from sluice.watersheds.execution import summarize
    from sluice.watersheds.inputs import layout_of, validated
    from sluice.watersheds.rundir import done_stages
    from sluice.watersheds.stages import WatershedTask, stages_for

    layout = layout_of(batch, root)
    state = layout.load()
    if not state.geojson or not state.template:
        if json_output:
            typer.echo(json.dumps({"batch": batch, "runs": [], "summary": None, "last_run": None}))
        else:
            typer.echo(f"{batch}: no validated GeoJSON and template yet")
        return
    chain = stages_for(list(WatershedTask))
    validation = validated(layout.dir / state.geojson, state.template, layout)
    runids = [w.runid for w in validation.watersheds]
    summary, states = summarize(layout, runids, chain)
    runs = []
    for runid, run_state in states.items():
        done = done_stages(layout.run_dir(runid)) if layout.run_dir(runid).is_dir() else {}
        runs.append(
            {
                "runid": runid,
                "state": run_state.value,
                "done": {s.value: done[s.value] for s in chain if s.value in done},
                "missing": [s.value for s in chain if s.value not in done],
            }
        )
    last = state.last_run
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "batch": batch,
                    "runs": runs,
                    "summary": summary.model_dump(),
                    "last_run": json.loads(last.model_dump_json()) if last else None,
                },
                indent=2,
            )
        )
        return
    for run in runs:
        done_list = ", ".join(run["done"]) or "-"
        typer.echo(
            f"{run['runid']}\t{run['state']}\t{len(run['done'])}/{len(chain)} stages done"
            f"\t{done_list}"
        )
    typer.echo(_summary_line(summary))
    if last is not None and last.summary is not None:
        tasks = ",".join(t.value for t in last.tasks)
        typer.echo(f"last run (tasks {tasks}): {_summary_line(last.summary)}")


def _summary_line(summary) -> str:
    return ", ".join(f"{key} {value}" for key, value in summary.model_dump().items())


def register(root_app: typer.Typer) -> None:
    """Add `sluice watersheds` to the `sluice` app."""
    root_app.add_typer(app, name="watersheds")
