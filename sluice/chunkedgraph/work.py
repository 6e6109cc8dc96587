"""Chunk work adapters: what runs for one chunk, given (layer, coords).

- ``callable``: PyChunkedGraph's atomic-chunk / parent-chunk functions by import path
  (``package.module:function``), called as ``f(coords, layer, config)``.
- ``command``: an argv template (``{table} {layer} {x} {y} {z}``) run as one job per
  chunk on a Sluice backend (the ``Backend`` protocol: local processes, Kubernetes, Nomad).
- ``noop``: no work; the tracking alone, for dry runs and benchmarks.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sluice.chunkedgraph.chunks import Coords
from sluice.errors import SluiceInputError
from sluice.jobs import JobSpec

RunChunk = Callable[[int, Coords], None]


class WorkKind(StrEnum):
    """What a chunk's work is."""

    NOOP = "noop"
    CALLABLE = "callable"
    COMMAND = "command"


class ChunkWork(BaseModel):
    """The chunk work of an ingest.

    Args:
        kind: noop, callable or command.
        atomic: Import path of the layer-2 function, ``module:function`` or ``file.py:function``.
        parent: Import path of the parent-chunk function (default: ``atomic``).
        command: argv template for ``command`` work; ``{table} {layer} {x} {y} {z}`` are filled.
        backend: Backend that runs ``command`` work (local, kubernetes, nomad).
    """

    model_config = ConfigDict(frozen=True)

    kind: WorkKind = WorkKind.NOOP
    atomic: str | None = None
    parent: str | None = None
    command: list[str] | None = Field(default=None, min_length=1)
    backend: str = "local"


def _module(name: str) -> ModuleType:
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = Path(name).resolve()
    if not path.is_file():
        raise ImportError(f"no file {path}")
    spec = importlib.util.spec_from_file_location(f"sluice_chunk_work_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def import_callable(path: str, role: str) -> Callable[..., Any]:
    """``package.module:function`` or ``path/to/file.py:function``."""
    module_name, _, name = path.rpartition(":")
    if not module_name or not name:
        raise SluiceInputError(f"{role} {path!r}: expected module:function or file.py:function")
    try:
        target = getattr(_module(module_name), name)
    except (ImportError, AttributeError, OSError) as error:
        raise SluiceInputError(f"{role} {path!r}: cannot import ({error})") from None
    if not callable(target):
        raise SluiceInputError(f"{role} {path!r}: not callable")
    return target


def validate(work: ChunkWork) -> None:
    """Raise ``SluiceInputError`` before anything runs if ``work`` cannot run."""
    if work.kind is WorkKind.CALLABLE:
        if not work.atomic:
            raise SluiceInputError("--atomic: callable work needs module:function")
        import_callable(work.atomic, "--atomic")
        if work.parent:
            import_callable(work.parent, "--parent")
    elif work.kind is WorkKind.COMMAND:
        if not work.command:
            raise SluiceInputError("--command: command work needs an argv template")
        from sluice.backends.factory import BackendKind

        if work.backend not in {kind.value for kind in BackendKind}:
            raise SluiceInputError(f"--backend {work.backend!r}: unknown backend")
        try:
            _fill(work.command, "t", 2, (0, 0, 0))
        except (KeyError, IndexError, ValueError) as error:
            raise SluiceInputError(f"--command: bad placeholder {error}") from None


def _fill(template: list[str], table: str, layer: int, coords: Coords) -> list[str]:
    x, y, z = coords
    return [part.format(table=table, layer=layer, x=x, y=y, z=z) for part in template]


def job_name(table: str, layer: int, coords: Coords) -> str:
    """A DNS-1123 job name for one chunk."""
    stem = re.sub(r"[^a-z0-9-]+", "-", table.lower()).strip("-")[:30] or "table"
    return f"cg-{stem}-{layer}-{coords[0]}-{coords[1]}-{coords[2]}"


def chunk_job(
    work: ChunkWork, table: str, layer: int, coords: Coords, env: dict[str, str]
) -> JobSpec:
    """The backend job of one chunk for ``command`` work."""
    return JobSpec(
        name=job_name(table, layer, coords),
        command=_fill(work.command or [], table, layer, coords),
        env=env,
    )


def chunk_runner(work: ChunkWork, config: Any, table: str) -> RunChunk:
    """The function a batch calls per chunk."""
    if work.kind is WorkKind.NOOP:
        return lambda layer, coords: None
    if work.kind is WorkKind.COMMAND:
        raise ValueError("command work runs through the ingest's JobPool, not in a batch runner")
    atomic = import_callable(work.atomic or "", "--atomic")
    parent = import_callable(work.parent, "--parent") if work.parent else atomic

    def run(layer: int, coords: Coords) -> None:
        (atomic if layer == 2 else parent)(coords, layer, config)

    return run
