"""Every check a watershed flow makes before it starts anything (shared by flows and CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sluice.backends.factory import BackendKind
from sluice.errors import SluiceInputError
from sluice.locations import case_insensitive, check_directory
from sluice.watersheds.base_source import check_base
from sluice.watersheds.batch import BatchLayout, BatchState, default_root
from sluice.watersheds.callables import import_callable
from sluice.watersheds.features import Validation, load_features, validate
from sluice.watersheds.stages import (
    Stage,
    StageCatalogue,
    WatershedTask,
    load_catalogue,
    stages_for,
)
from sluice.watersheds.template import RunidTemplate

MAX_LANES = 64


def parse_backend(value: str) -> BackendKind:
    try:
        return BackendKind(value)
    except ValueError:
        allowed = ", ".join(k.value for k in BackendKind)
        raise SluiceInputError(f"backend: {value[:80]!r} is not one of {allowed}") from None


def layout_of(batch: str, root: str | None) -> BatchLayout:
    """The batch's layout; a root that is a file (or under one) is refused here."""
    layout = BatchLayout(root or default_root(), batch)
    check_directory(layout.root, "root")
    return layout


def validated(geojson: str | Path, template: str, layout: BatchLayout) -> Validation:
    """Every feature's runid; SluiceInputError naming the features with problems.

    Where the batch's runs directory cannot tell case apart, runids differing only in
    case are refused (they would share a directory).
    """
    fold = case_insensitive(layout.runs)
    validation = validate(load_features(geojson), RunidTemplate(template), fold_case=fold)
    validation.raise_for_problems(f"runid template {template[:100]!r} on {str(geojson)!r}")
    return validation


@dataclass(frozen=True)
class CreateInputs:
    layout: BatchLayout
    catalogue: StageCatalogue
    validation: Validation | None


def check_create(
    batch: str,
    base: str,
    stage_config: str,
    geojson: str | None,
    template: str | None,
    root: str | None,
) -> CreateInputs:
    layout = layout_of(batch, root)
    if layout.dir.exists():
        raise SluiceInputError(f"batch {batch!r}: already exists at {str(layout.dir)!r}")
    check_base(base)
    catalogue = load_catalogue(stage_config)
    if template is not None and geojson is None:
        raise SluiceInputError("template: give the GeoJSON with it")
    validation = None
    if geojson and template:
        validation = validated(geojson, template, layout)
    elif geojson:
        load_features(geojson)
    return CreateInputs(layout, catalogue, validation)


@dataclass(frozen=True)
class RunInputs:
    layout: BatchLayout
    state: BatchState
    stages: list[Stage]
    validation: Validation
    lanes: int


def check_run(
    batch: str,
    tasks: list[WatershedTask],
    root: str | None,
    pool_size: int,
    lanes: int | None,
    max_chunks: int,
) -> RunInputs:
    layout = layout_of(batch, root)
    state = layout.load()
    stages = stages_for(tasks)
    if not stages:
        raise SluiceInputError("tasks: select at least one task")
    lanes = lanes or pool_size
    if pool_size < 1 or not 1 <= lanes <= MAX_LANES or max_chunks < 1:
        raise SluiceInputError(
            f"pool_size {pool_size}, lanes {lanes}, max_chunks {max_chunks}: "
            f"need pool_size >= 1, 1 <= lanes <= {MAX_LANES}, max_chunks >= 1"
        )
    state.stages.require(stages)
    for stage in stages:
        if callable_path := state.stages.command_for(stage).callable:
            import_callable(callable_path)
    if not state.geojson or not state.template:
        raise SluiceInputError(f"batch {batch!r}: no GeoJSON or runid template; validate first")
    validation = validated(layout.dir / state.geojson, state.template, layout)
    return RunInputs(layout, state, stages, validation, lanes)
