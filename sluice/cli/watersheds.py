"""`sluice watersheds create|validate|run|status`: a thin front over the watershed batch flows."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.backends.factory import BackendKind
from sluice.cli.common import fail_on_input_errors

app = typer.Typer(
    no_args_is_help=True, help="Watershed batches (replaces the WEPPcloud batch runner)."
)

Root = Annotated[
    str | None, typer.Option(help="Directory holding batches (default: $SLUICE_HOME/watersheds).")
]


@app.command()
@fail_on_input_errors
def create(
    batch: Annotated[str, typer.Argument(help="3-29 lowercase letters, digits, '-' or '_'.")],
    base: Annotated[str, typer.Option(help="Base project: a directory or s3://bucket/prefix.")],
    stages: Annotated[str, typer.Option(help="Stage commands YAML.")],
    geojson: Annotated[str | None, typer.Option(help="Watershed FeatureCollection.")] = None,
    template: Annotated[str | None, typer.Option(help="Runid template.")] = None,
    aws_credentials_block: Annotated[
        str | None, typer.Option(help="prefect-aws AwsCredentials block for an S3 base.")
    ] = None,
    root: Root = None,
) -> None:
    """Create a batch: `_base` from the base project, `resources/`, `runs/`, `batch.json`."""
    from sluice.watersheds.inputs import check_create

    checked = check_create(batch, base, stages, geojson, template, root)
    from sluice.server import ensure_api

    ensure_api()
    from flows.watersheds import create_watershed_batch

    create_watershed_batch(batch, base, stages, geojson, template, root, aws_credentials_block)
    typer.echo(f"created {checked.layout.dir}")


@app.command()
@fail_on_input_errors
def validate(
    geojson: Annotated[str | None, typer.Option(help="Watershed FeatureCollection.")] = None,
    template: Annotated[str | None, typer.Option(help="Runid template.")] = None,
    batch: Annotated[
        str | None, typer.Option(help="Validate for this batch and store the result with it.")
    ] = None,
    root: Root = None,
) -> None:
    """Print each feature's runid, one per line; or the problems naming the features (exit 2)."""
    if batch is None:
        if not geojson or not template:
            from sluice.errors import SluiceInputError

            raise SluiceInputError("validate: give --geojson and --template (or --batch)")
        from sluice.watersheds.features import load_features, validate
        from sluice.watersheds.template import RunidTemplate

        validation = validate(load_features(geojson), RunidTemplate(template))
        for problem in validation.problems:
            typer.echo(f"problem: {problem}", err=True)
        if validation.problems:
            raise typer.Exit(2)
        runids = [w.runid for w in validation.watersheds]
    else:
        from sluice.server import ensure_api

        ensure_api()
        from flows.watersheds import validate_watershed_batch

        runids = validate_watershed_batch(batch, template, geojson, root)
    for runid in runids:
        typer.echo(runid)


@app.command()
@fail_on_input_errors
def run(
    batch: Annotated[str, typer.Argument(help="Batch name.")],
    tasks: Annotated[
        str,
        typer.Option(help="Comma-separated: watershed,landuse,soils,climate,wepp,watar,omni."),
    ] = "watershed,landuse,soils,climate,wepp,watar,omni",
    force_rebuild: Annotated[bool, typer.Option(help="Re-run stages already done.")] = False,
    pool_size: Annotated[int, typer.Option(help="Watershed jobs at once (the GCL).")] = 3,
    lanes: Annotated[
        int | None, typer.Option(help="Chunks in flight (default: pool size).")
    ] = None,
    max_chunks: Annotated[int, typer.Option(help="Most chunks watersheds are dealt into.")] = 24,
    backend: Annotated[BackendKind, typer.Option(help="Where stages run.")] = BackendKind.LOCAL,
    root: Root = None,
) -> None:
    """Run Batch: every watershed's stages in order, largest first, skipping done stages."""
    from sluice.watersheds.inputs import check_run
    from sluice.watersheds.stages import parse_tasks

    selected = parse_tasks([t for t in tasks.split(",") if t.strip()])
    check_run(batch, selected, root, pool_size, lanes, max_chunks)
    from sluice.server import ensure_api

    ensure_api()
    from flows.watersheds import run_watershed_batch

    summary = run_watershed_batch(
        batch,
        tasks=selected,
        force_rebuild=force_rebuild,
        pool_size=pool_size,
        lanes=lanes,
        max_chunks=max_chunks,
        backend=backend,
        root=root,
    )
    typer.echo(_summary_line(summary))


@app.command()
@fail_on_input_errors
def status(
    batch: Annotated[str, typer.Argument(help="Batch name.")],
    root: Root = None,
) -> None:
    """How every run stands (complete, failed, incomplete, missing, invalid); no server needed."""
    from sluice.watersheds.execution import summarize
    from sluice.watersheds.inputs import layout_of, validated
    from sluice.watersheds.stages import WatershedTask, stages_for

    layout = layout_of(batch, root)
    state = layout.load()
    if not state.geojson or not state.template:
        typer.echo(f"{batch}: no validated GeoJSON and template yet")
        return
    tasks = state.last_run.tasks if state.last_run else list(WatershedTask)
    runids = [w.runid for w in validated(layout.dir / state.geojson, state.template).watersheds]
    summary, states = summarize(layout, runids, stages_for(tasks))
    for runid, run_state in states.items():
        typer.echo(f"{runid}\t{run_state.value}")
    typer.echo(_summary_line(summary))


def _summary_line(summary) -> str:
    return ", ".join(f"{key} {value}" for key, value in summary.model_dump().items())


def register(root_app: typer.Typer) -> None:
    """Add `sluice watersheds` to the `sluice` app."""
    root_app.add_typer(app, name="watersheds")
