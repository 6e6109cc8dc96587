"""`sluice chunkedgraph`: PyChunkedGraph's `ingest graph/status`, `rqx requeue`, `flush_redis`."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.errors import SluiceInputError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def _fail(error: SluiceInputError) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2)


def _finish(table: str) -> None:
    """Print the final status; exit 1 if chunks failed."""
    from sluice.chunkedgraph.tracker import open_table, status_lines

    state = open_table(table)
    typer.echo("\n".join(status_lines(state)))
    if state.failures:
        typer.echo(
            f"{len(state.failures)} chunks failed; `sluice chunkedgraph requeue {table}` reruns",
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def ingest(
    table: Annotated[str, typer.Argument(help="Graph table name (its tracker state's name).")],
    dataset: Annotated[str, typer.Argument(help="PyChunkedGraph dataset YAML.")],
    test: Annotated[
        bool, typer.Option(help="Only the 8 children of the middle layer-3 chunk and that parent.")
    ] = False,
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
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 2,
    dask_address: Annotated[
        str | None, typer.Option(help="Run batches on this Dask scheduler.")
    ] = None,
    dask_workers: Annotated[
        int | None, typer.Option(min=1, help="Start a local Dask cluster of N workers.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Most layer-2 chunks per task run.")
    ] = 4096,
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
        _fail(SluiceInputError("choose exactly one of --noop, --atomic, --command"))
    if noop:
        work = ChunkWork(kind=WorkKind.NOOP)
    elif atomic:
        work = ChunkWork(kind=WorkKind.CALLABLE, atomic=_absolute(atomic), parent=_absolute(parent))
    else:
        work = ChunkWork(kind=WorkKind.COMMAND, command=shlex.split(command or ""), backend=backend)
    _run(
        table,
        dataset,
        work=work,
        test=test,
        workers=workers,
        dask_address=dask_address,
        dask_workers=dask_workers,
        batch_size=batch_size,
    )


def _absolute(path: str | None) -> str | None:
    """Make ``file.py:function`` absolute so worker processes find it from any directory."""
    from pathlib import Path

    if path is None or ".py:" not in path:
        return path
    file, _, name = path.rpartition(":")
    return f"{Path(file).resolve()}:{name}"


def _run(table: str, dataset: str, **options) -> None:
    from sluice.chunkedgraph.config import load_grid
    from sluice.chunkedgraph.tracker import table_dir
    from sluice.chunkedgraph.work import validate

    try:  # every input problem is reported here, before a server starts or a chunk runs
        table_dir(table)
        grid = load_grid(dataset)[1]
        validate(options["work"])
        if options.get("test"):
            grid.test_parent()
    except SluiceInputError as error:
        _fail(error)
    except ValueError as error:
        _fail(SluiceInputError(f"dataset {dataset}: {error}"))

    from sluice.server import ensure_api

    ensure_api()
    from flows.chunkedgraph import run_ingest

    try:
        run_ingest(table, dataset, **options)
    except SluiceInputError as error:
        _fail(error)
    _finish(table)


@app.command()
def status(table: Annotated[str, typer.Argument(help="Graph table name.")]) -> None:
    """Print `{layer}\\t: {done} / {count}` per layer, as `ingest status` does."""
    from sluice.chunkedgraph.tracker import open_table, status_lines

    try:
        state = open_table(table)
    except SluiceInputError as error:
        _fail(error)
    typer.echo("\n".join(status_lines(state)))
    if state.failures:
        typer.echo(f"{len(state.failures)} failed chunks", err=True)


@app.command()
def requeue(
    table: Annotated[str, typer.Argument(help="Graph table name.")],
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 2,
    dask_address: Annotated[
        str | None, typer.Option(help="Run batches on this Dask scheduler.")
    ] = None,
) -> None:
    """Rerun failed chunks (and all still pending above them), like `rqx requeue --all`."""
    from sluice.chunkedgraph.tracker import read_table
    from sluice.chunkedgraph.work import ChunkWork

    try:
        known = read_table(table)
    except SluiceInputError as error:
        _fail(error)
    _run(
        table,
        known["dataset"],
        work=ChunkWork.model_validate(known["work"]),
        requeue=True,
        workers=workers,
        dask_address=dask_address,
    )


@app.command()
def reset(table: Annotated[str, typer.Argument(help="Graph table name.")]) -> None:
    """Forget one table's tracker state (`flush_redis`, for this table only)."""
    from sluice.chunkedgraph.tracker import reset_table

    try:
        reset_table(table)
    except SluiceInputError as error:
        _fail(error)
    typer.echo(f"table {table!r}: state cleared")


def register(root: typer.Typer) -> None:
    """Add this flow's commands to the `sluice` app."""
    root.add_typer(app, name="chunkedgraph")
