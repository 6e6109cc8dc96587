"""A batch on disk: ``<root>/<batch>/{_base,resources,runs,batch.json}``."""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sluice.errors import SluiceInputError
from sluice.watersheds.stages import StageCatalogue, WatershedTask

BATCH_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{2,28}$")
RESERVED_NAMES = {"resources", "runs", "logs"}


def check_batch_name(name: str) -> str:
    """3-29 lowercase letters, digits, ``-``, ``_``; starting with a letter or digit."""
    if not BATCH_NAME.fullmatch(name or "") or name in RESERVED_NAMES:
        raise SluiceInputError(
            f"batch name {name!r}: use 3-29 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit (not resources/runs/logs)"
        )
    return name


def default_root() -> Path:
    """``$SLUICE_WATERSHEDS_ROOT``, else ``$SLUICE_HOME/watersheds``."""
    from sluice.settings import sluice_settings

    settings = sluice_settings()
    return settings.watersheds_root or settings.home / "watersheds"


class Summary(BaseModel):
    """How a batch's runs stand."""

    total: int = 0
    complete: int = 0
    failed: int = 0
    incomplete: int = 0
    missing: int = 0
    invalid: int = 0
    retry_eligible: int = 0


class LastRun(BaseModel):
    started_at: datetime
    finished_at: datetime | None = None
    flow_run_id: str | None = None
    tasks: list[WatershedTask]
    force_rebuild: bool
    summary: Summary | None = None
    failures: dict[str, str] = Field(default_factory=dict)


class BatchState(BaseModel):
    """The batch state file (``batch.json``)."""

    name: str
    created_at: datetime
    base_source: str
    stages: StageCatalogue
    geojson: str | None = Field(default=None, description="Path relative to the batch dir.")
    geojson_sha256: str | None = None
    template: str | None = None
    template_status: str | None = Field(
        default=None, description="valid or invalid: the last validation's verdict (as wepppy)."
    )
    template_summary: dict[str, int | bool] | None = Field(
        default=None, description="wepppy's summary of the last validation."
    )
    validated_runids: int | None = None
    last_run: LastRun | None = None


class BatchLayout:
    """Where a batch's parts live."""

    def __init__(self, root: str | Path, name: str) -> None:
        self.name = check_batch_name(name)
        self.root = Path(root).resolve()
        self.dir = self.root / name

    base = property(lambda self: self.dir / "_base")
    resources = property(lambda self: self.dir / "resources")
    runs = property(lambda self: self.dir / "runs")
    logs = property(lambda self: self.dir / "logs")
    state_file = property(lambda self: self.dir / "batch.json")
    ledger_run = property(lambda self: f"watersheds/{self.name}")  # attempts and run lease

    def run_dir(self, runid: str) -> Path:
        return self.runs / runid

    def exists(self) -> bool:
        return self.state_file.is_file()

    def load(self) -> BatchState:
        if not self.exists():
            raise SluiceInputError(f"batch {self.name!r}: not found under {str(self.root)!r}")
        state = BatchState.model_validate_json(self.state_file.read_text(encoding="utf-8"))
        if not self.base.is_dir():
            raise SluiceInputError(f"batch {self.name!r}: base project {str(self.base)!r} missing")
        return state

    def save(self, state: BatchState) -> None:
        write_json_atomic(self.state_file, json.loads(state.model_dump_json()))


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` if it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def write_json_atomic(path: Path, payload: object) -> None:
    """Replace ``path`` with ``payload`` so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.name}.", delete=False, encoding="utf-8"
    ) as handle:
        json.dump(payload, handle, indent=2, default=str)
    os.replace(handle.name, path)


def utcnow() -> datetime:
    return datetime.now(UTC)
