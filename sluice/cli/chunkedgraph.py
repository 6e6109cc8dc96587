"""`sluice chunkedgraph`: PyChunkedGraph's `ingest graph/status`, `rqx requeue`, `flush_redis`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from sluice.cli.common import fail_on_input_errors
from sluice.cli.flow_options import FlowArguments, flow_command
from sluice.errors import SluiceInputError, WorkIncomplete

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def _print_status(table: str) -> None:
    from sluice.chunkedgraph.tracker import open_table, status_lines

    typer.echo("\n".join(status_lines(open_table(table))))


# CLI-only options: the flow takes the work as one ChunkWork, and its process count and
# window from run_ingest's sizing; these are how the command line spells them.
Workers = Annotated[int, typer.Option(help="Local worker processes for callable work (1-1024).")]
INGEST = ("sluice.flows.chunkedgraph", "chunkedgraph_ingest")


@app.command()
@fail_on_input_errors
@flow_command(
    *INGEST, arguments=("table", "dataset"), exclude=("work", "window", "requeue", "processes")
)
def ingest(
    arguments: FlowArguments,
    noop: Annotated[bool, typer.Option(help="Track only, run no chunk work.")] = False,
    atomic: Annotated[
        str | None, typer.Option(help="Layer-2 work: module:function or file.py:function.")
    ] = None,
    parent: Annotated[
        str | None, typer.Option(help="Parent-chunk work (default: --atomic).")
    ] = None,
    command: Annotated[
        str | None,
        typer.Option(help="Work as a command per chunk: '{table} {layer} {x} {y} {z}' are filled."),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="Backend for --command: local, kubernetes, nomad.")
    ] = "local",
    workers: Workers = 2,
) -> None:
    """Ingest a table: every layer-2 chunk, then each parent as soon as its children are done."""
    import shlex

    from sluice.chunkedgraph.work import ChunkWork, WorkKind

    chosen = [
        flag
        for flag, value in (("--noop", noop), ("--atomic", atomic), ("--command", command))
        if value
    ]
    if len(chosen) != 1:
        raise SluiceInputError("choose exactly one of --noop, --atomic, --command")
    if noop:
        work = ChunkWork(kind=WorkKind.NOOP)
    elif atomic:
        work = ChunkWork(kind=WorkKind.CALLABLE, atomic=_absolute(atomic), parent=_absolute(parent))
    else:
        try:
            argv = shlex.split(command or "")
        except ValueError as error:
            raise SluiceInputError(f"--command {command!r}: {error}") from None
        if not argv:
            raise SluiceInputError("--command: empty command")
        work = ChunkWork(kind=WorkKind.COMMAND, command=argv, backend=backend)
    if "parallelism" in arguments.given and work.kind is not WorkKind.COMMAND:
        raise SluiceInputError("--parallelism: only --command work runs as jobs")
    _run(**arguments.values, work=work, workers=workers)


def _absolute(path: str | None) -> str | None:
    """Make ``file.py:function`` absolute so worker processes find it from any directory."""
    from pathlib import Path

    if path is None or ".py:" not in path:
        return path
    file, _, name = path.rpartition(":")
    return f"{Path(file).resolve()}:{name}"


def _check_dataset(dataset: str, options: dict, storage=None) -> None:
    from sluice.chunkedgraph.config import load_grid, with_ingest_flags

    try:
        config, grid = load_grid(dataset, storage)
        with_ingest_flags(config, raw=options.get("raw", False), test=options.get("test", False))
        if options.get("test"):
            grid.test_parent()
    except ValueError as error:
        if isinstance(error, SluiceInputError):
            raise
        raise SluiceInputError(f"dataset {dataset}: {error}") from None


def _run(table: str, dataset: str, **options) -> None:
    """Check every input, start the API, run the flow; print the status. Bad input and
    failed chunks end as one line each (``fail_on_input_errors``)."""
    from sluice.chunkedgraph import inputs
    from sluice.chunkedgraph.config import load_dataset
    from sluice.chunkedgraph.tracker import table_dir

    blocks = options.get("aws_credentials_block") or options.get("gcp_credentials_block")
    # every input problem is reported here, before a server starts or a chunk runs
    table_dir(table)
    inputs.check_sizes(workers=(inputs.Workers, options.get("workers")))  # CLI-only
    inputs.check_ingest(
        options["work"],
        dask_address=options.get("dask_address"),
        dask_workers=options.get("dask_workers"),
        state_url=options.get("state_url"),
    )
    if blocks:  # the watershed is read once the blocks can be loaded
        load_dataset(dataset)
    else:
        _check_dataset(dataset, options)

    from sluice.server import ensure_api

    ensure_api()
    from sluice.flows.chunkedgraph import run_ingest

    try:
        if blocks:  # the flow takes the blocks themselves
            from prefect_aws import AwsCredentials
            from prefect_gcp import GcpCredentials

            from sluice.blocks.storage import storage_for
            from sluice.cli.common import with_blocks

            options = with_blocks(
                options,
                aws_credentials_block=(AwsCredentials, "--aws-credentials-block"),
                gcp_credentials_block=(GcpCredentials, "--gcp-credentials-block"),
            )
            storage = storage_for(
                options.get("aws_credentials_block"), options.get("gcp_credentials_block")
            )
            _check_dataset(dataset, options, storage)
        run_ingest(table, dataset, **options)
    except WorkIncomplete:
        _print_status(table)  # the layers first; the summary line last
        raise
    _print_status(table)


@app.command()
@fail_on_input_errors
def status(
    table: Annotated[str, typer.Argument(help="Graph table name.")],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON (keys in docs/cli.md).")
    ] = False,
) -> None:
    """Print `{layer}\\t: {done} / {count}` per layer, as `ingest status` does."""
    from sluice.chunkedgraph.tracker import open_table, status_lines

    state = open_table(table)
    if json_output:
        layers = [
            {"layer": layer, "done": state.done_count[layer], "count": state.grid.count(layer)}
            for layer in state.grid.layers
        ]
        failed = len(state.failures)
        typer.echo(json.dumps({"table": table, "layers": layers, "failed_chunks": failed}))
        return
    typer.echo("\n".join(status_lines(state)))
    if state.failures:
        typer.echo(f"{len(state.failures)} failed chunks", err=True)


@app.command()
@fail_on_input_errors
@flow_command(*INGEST, arguments=("table",), only=("table", "parallelism", "dask_address"))
def requeue(arguments: FlowArguments, workers: Workers = 2) -> None:
    """Rerun failed chunks (and all still pending above them), like `rqx requeue --all`."""
    from sluice.chunkedgraph.tracker import read_table
    from sluice.chunkedgraph.work import ChunkWork

    known = read_table(arguments.values["table"])
    _run(
        **arguments.values,
        dataset=known["dataset"],
        work=ChunkWork.model_validate(known["work"]),
        requeue=True,
        workers=workers,
        **known.get("options", {}),
    )


@app.command()
@fail_on_input_errors
def reset(table: Annotated[str, typer.Argument(help="Graph table name.")]) -> None:
    """Forget one table's tracker state (`flush_redis`, for this table only)."""
    from sluice.chunkedgraph.tracker import reset_table

    reset_table(table)
    typer.echo(f"table {table!r}: state cleared")


def register(root: typer.Typer) -> None:
    """Add this flow's commands to the `sluice` app."""
    root.add_typer(app, name="chunkedgraph")
