"""The ingest's sized parameters, declared once: the flow's signature and the CLI use these.

Each is an ``Annotated`` int with its bounds; :func:`check_sizes` validates CLI values
against the same declarations before anything starts (one line naming the option).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from sluice.errors import SluiceInputError

if TYPE_CHECKING:
    from sluice.chunkedgraph.work import ChunkWork

BatchSize = Annotated[int, Field(ge=1, le=2**24)]
Window = Annotated[int, Field(ge=1, le=10_000)]
Processes = Annotated[int, Field(ge=0, le=1024)]
Workers = Annotated[int, Field(ge=1, le=1024)]
Parallelism = Annotated[int, Field(ge=1, le=100_000)]

DEFAULT_PARALLELISM = 4


def check_sizes(**options: tuple[Any, Any]) -> None:
    """``check_sizes(parallelism=(Parallelism, 500))``: refuse a value outside its bounds."""
    for name, (kind, value) in options.items():
        if value is None:
            continue
        try:
            TypeAdapter(kind).validate_python(value)
        except ValidationError as error:
            message = error.errors()[0]["msg"].lower()
            option = "--" + name.replace("_", "-")
            raise SluiceInputError(f"{option} {value}: {message}") from None


def check_ingest(
    work: ChunkWork,
    *,
    dask_address: str | None = None,
    dask_workers: int | None = None,
    state_url: str | None = None,
) -> None:
    """The ingest's non-size inputs, checked once for the flow and the CLI alike."""
    from sluice.chunkedgraph.mirror import check_state_url
    from sluice.chunkedgraph.runners import check_dask_address
    from sluice.chunkedgraph.work import WorkKind, validate

    validate(work)
    if work.kind is WorkKind.COMMAND and (dask_address or dask_workers):
        raise SluiceInputError(
            "--dask-address/--dask-workers run callable work; --command work runs as "
            "backend jobs (use --parallelism)"
        )
    if dask_address:
        check_dask_address(dask_address)
    if state_url:
        check_state_url(state_url)
