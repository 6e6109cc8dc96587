"""`sluice chunkedgraph`: PyChunkedGraph's `ingest graph/status`, `rqx requeue`, `flush_redis`."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.errors import SluiceInputError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def _fail(error: SluiceInputError) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2)


def _print_status(table: str) -> None:
    from sluice.chunkedgraph.tracker import open_table, status_lines

    typer.echo("\n".join(status_lines(open_table(table))))


AwsBlock = Annotated[
    str | None,
    typer.Option(help="AwsCredentials block for an s3:// watershed (default: AWS's own chain)."),
]
GcpBlock = Annotated[
    str | None,
    typer.Option(help="GcpCredentials block for a gs:// watershed (default: Google's own)."),
]
Workers = Annotated[int, typer.Option(help="Local worker processes for callable work (1-1024).")]
DaskAddress = Annotated[
    str | None, typer.Option(help="Run callable work's batches on this Dask scheduler.")
]
Parallelism = Annotated[
    int | None,
    typer.Option(help="--command work: most jobs in flight across all batches (default 4)."),
]


@app.command()
def ingest(
    table: Annotated[str, typer.Argument(help="Graph table name (its tracker state's name).")],
    dataset: Annotated[str, typer.Argument(help="PyChunkedGraph dataset YAML.")],
    test: Annotated[
        bool, typer.Option(help="Only the 8 children of the middle layer-3 chunk and that parent.")
    ] = False,
    raw: Annotated[
        bool,
        typer.Option(
            help="Read raw edges/agglomeration (PyChunkedGraph's --raw: USE_RAW_EDGES and "
            "USE_RAW_COMPONENTS for the work; needs ingest_config.AGGLOMERATION)."
        ),
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
    parallelism: Parallelism = None,
    workers: Workers = 2,
    dask_address: DaskAddress = None,
    dask_workers: Annotated[
        int | None, typer.Option(help="Start a local Dask cluster of N workers.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Most layer-2 chunks per task run.")] = 4096,
    aws_credentials_block: AwsBlock = None,
    gcp_credentials_block: GcpBlock = None,
    state_url: Annotated[
        str | None,
        typer.Option(
            help="Also keep the tracker snapshot at <URL>/<table>/ (s3://, gs://, file://); "
            "an empty $SLUICE_HOME resumes from it."
        ),
    ] = None,
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
        try:
            argv = shlex.split(command or "")
        except ValueError as error:
            _fail(SluiceInputError(f"--command {command!r}: {error}"))
        if not argv:
            _fail(SluiceInputError("--command: empty command"))
        work = ChunkWork(kind=WorkKind.COMMAND, command=argv, backend=backend)
    if parallelism is not None and work.kind is not WorkKind.COMMAND:
        _fail(SluiceInputError("--parallelism: only --command work runs as jobs"))
    _run(
        table,
        dataset,
        work=work,
        test=test,
        raw=raw,
        workers=workers,
        parallelism=parallelism,
        dask_address=dask_address,
        dask_workers=dask_workers,
        batch_size=batch_size,
        aws_credentials_block=aws_credentials_block,
        gcp_credentials_block=gcp_credentials_block,
        state_url=state_url,
    )


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
    """Check every input, start the API, run the flow; print the status and exit 0/1/2."""
    from sluice.chunkedgraph import inputs
    from sluice.chunkedgraph.config import load_dataset
    from sluice.chunkedgraph.tracker import ChunksFailed, table_dir

    if options.get("parallelism") is None:
        options["parallelism"] = inputs.DEFAULT_PARALLELISM
    blocks = options.get("aws_credentials_block") or options.get("gcp_credentials_block")
    try:  # every input problem is reported here, before a server starts or a chunk runs
        table_dir(table)
        inputs.check_sizes(
            workers=(inputs.Workers, options.get("workers")),
            parallelism=(inputs.Parallelism, options.get("parallelism")),
            batch_size=(inputs.BatchSize, options.get("batch_size")),
            dask_workers=(inputs.Workers, options.get("dask_workers")),
        )
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
    except SluiceInputError as error:
        _fail(error)

    from sluice.server import ensure_api

    ensure_api()
    from sluice.flows.chunkedgraph import run_ingest

    try:
        if blocks:
            from sluice.blocks.storage import storage_from_blocks

            storage = storage_from_blocks(
                options.get("aws_credentials_block"), options.get("gcp_credentials_block")
            )
            _check_dataset(dataset, options, storage)
        run_ingest(table, dataset, **options)
    except SluiceInputError as error:
        _fail(error)
    except ChunksFailed as error:
        _print_status(table)
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    _print_status(table)


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
    workers: Workers = 2,
    parallelism: Parallelism = None,
    dask_address: DaskAddress = None,
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
        parallelism=parallelism,
        dask_address=dask_address,
        **known.get("options", {}),
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
