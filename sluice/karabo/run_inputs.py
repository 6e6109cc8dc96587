"""A Karabo run's parameters beyond the workflow settings, checked once before anything starts.

``prepare`` is called by the CLI before it starts a Prefect server and again by the flow
as its first step, so both refuse the same inputs with the same one-line message:
settings, backend, ingestor, timeouts, memory and CPU quantities, pod placement, the
estimate against the temporary volume, and every output location (scratch and report
directories, the ingestor's local areas) before a flow run, a job or a file exists.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sluice.errors import SluiceInputError
from sluice.karabo.areas import open_area
from sluice.karabo.estimate import Estimate, estimate, refuse_if_too_big
from sluice.karabo.settings import KaraboSettings, parse_start
from sluice.ledger import check_ledger_url
from sluice.locations import check_directory, nearest_existing
from sluice.names import KUBERNETES_NAMESPACE, LABEL_KEY, LABEL_VALUE
from sluice.quantity import format_memory, parse_cpu, parse_memory

MAX_MEMORY = 2**50  # 1 PiB: any memory quantity above this is a typo
MAX_VOLUME = 2**60
MAX_CPU = 4096.0
MAX_SECONDS = 365 * 86400.0
MAX_PLACEMENT_JSON = 64 * 1024
AFFINITY_KEYS = ("nodeAffinity", "podAffinity", "podAntiAffinity")


class SimulationBackend(StrEnum):
    """Where the simulation job runs (the Karabo image needs Kubernetes; locally a stand-in)."""

    LOCAL = "local"
    KUBERNETES = "kubernetes"


class Ingestor(StrEnum):
    """Who processes the staging area."""

    STANDIN = "standin"
    EXTERNAL = "external"


class Toleration(BaseModel):
    """A pod toleration, as in the real job's ``tolerations`` (Kubernetes field names)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    key: str | None = Field(None, pattern=f"^{LABEL_KEY.pattern}$")
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = Field(None, pattern=f"^{LABEL_VALUE.pattern}$")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(None, ge=0, alias="tolerationSeconds")

    def manifest(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


def parse_toleration(text: str) -> Toleration:
    """``key=value:Effect`` (operator Equal) or ``key:Effect`` (Exists), as ``kubectl taint``."""
    head, sep, effect = text.rpartition(":")
    if not sep:
        raise SluiceInputError(
            f"toleration: {text[:80]!r} is not key=value:Effect or key:Effect "
            "(e.g. hpc=true:NoSchedule)"
        )
    key, eq, value = head.partition("=")
    values = {"key": key, "effect": effect}
    values |= {"operator": "Equal", "value": value} if eq else {"operator": "Exists"}
    return _model(Toleration, values, "toleration")


def _model(kind: type[BaseModel], values: Any, what: str) -> Any:
    try:
        return kind.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SluiceInputError(f"{what}{'.' + where if where else ''}: {first['msg']}") from None


class Placement(BaseModel):
    """Where the simulation pod may run: node selector, affinity, tolerations (passed through)."""

    model_config = ConfigDict(frozen=True)

    node_selector: dict[str, str] = Field(default_factory=dict)
    affinity: dict[str, Any] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)

    def apply(self, pod: dict[str, Any]) -> None:
        """Set them on a pod spec (a site's own template values are replaced)."""
        if self.node_selector:
            pod["nodeSelector"] = {**(pod.get("nodeSelector") or {}), **self.node_selector}
        if self.affinity:
            pod["affinity"] = self.affinity
        if self.tolerations:
            pod["tolerations"] = [t.manifest() for t in self.tolerations]


def check_placement(
    node_selector: dict[str, str] | None,
    affinity: dict[str, Any] | None,
    tolerations: list[Toleration | dict[str, Any]] | None,
) -> Placement:
    """Validated pod placement; affinity is checked for its shape and size only."""
    for key, value in (node_selector or {}).items():
        if not LABEL_KEY.fullmatch(str(key)) or not LABEL_VALUE.fullmatch(str(value)):
            raise SluiceInputError(
                f"node_selector: {str(key)[:80]!r}={str(value)[:80]!r} is not a label key=value"
            )
    affinity = affinity or {}
    if not isinstance(affinity, dict):
        raise SluiceInputError("affinity: must be an object (nodeAffinity, podAffinity, ...)")
    unknown = [k for k in affinity if k not in AFFINITY_KEYS]
    if unknown:
        raise SluiceInputError(
            f"affinity: unknown field {str(unknown[0])[:80]!r} "
            f"(allowed: {', '.join(AFFINITY_KEYS)})"
        )
    if len(json.dumps(affinity)) > MAX_PLACEMENT_JSON:
        raise SluiceInputError(f"affinity: larger than {MAX_PLACEMENT_JSON:,} bytes of JSON")
    checked = [
        t if isinstance(t, Toleration) else _model(Toleration, t, f"tolerations[{i}]")
        for i, t in enumerate(tolerations or [])
    ]
    if len(checked) > 64:
        raise SluiceInputError("tolerations: more than 64")
    return Placement(
        node_selector=dict(node_selector or {}), affinity=affinity, tolerations=checked
    )


def parse_json_object(text: str, what: str) -> Any:
    """A JSON value from the command line, bounded in size; one line naming ``what`` if bad."""
    if len(text) > MAX_PLACEMENT_JSON:
        raise SluiceInputError(f"{what}: larger than {MAX_PLACEMENT_JSON:,} bytes")
    try:
        return json.loads(text)
    except ValueError as error:
        raise SluiceInputError(f"{what}: not valid JSON ({error})") from None


def _or_text(parse: Callable[[str], Any]) -> BeforeValidator:
    """A value, or its command-line spelling (text) parsed by ``parse``."""
    return BeforeValidator(lambda value: parse(value) if isinstance(value, str) else value)


def _labels(value: Any) -> Any:
    """Labels as a mapping, or as ``KEY=VALUE`` words (the command line's spelling)."""
    if not isinstance(value, list):
        return value
    pairs = [str(pair).partition("=") for pair in value]
    if bad := [key for key, sep, _ in pairs if not sep]:
        raise SluiceInputError(f"node_selector: {bad[0][:80]!r} is not KEY=VALUE")
    return {key: label for key, _, label in pairs}


# The flow's placement parameters; the command line spells them as text (a JSON object,
# KEY=VALUE words, ``kubectl taint`` tolerations) and the same check reads both spellings.
StartTime = Annotated[datetime, _or_text(parse_start)]
NodeSelector = Annotated[dict[str, str], BeforeValidator(_labels)]
Affinity = Annotated[dict[str, Any], _or_text(lambda text: parse_json_object(text, "affinity"))]
Tolerations = list[Annotated[Toleration, _or_text(parse_toleration)]]


@dataclass(frozen=True)
class Prepared:
    """Everything a run needs that can be known without a server, checked."""

    settings: KaraboSettings
    estimate: Estimate
    backend: SimulationBackend
    ingestor: Ingestor
    areas: tuple[str | None, str | None, str | None]
    scratch: Path
    report_dir: Path
    volume_bytes: int
    memory_request_bytes: int
    memory_limit_bytes: int
    cpu: float | None
    cpu_limit: float | None
    placement: Placement
    verify_timeout_seconds: float
    simulation_timeout_seconds: float


def _choice(kind: type[StrEnum], value: Any, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise SluiceInputError(f"{what}: {str(value)[:80]!r} is not one of {allowed}") from None


def _seconds(value: float, what: str, *, zero: bool) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero) or value > MAX_SECONDS:
        low = "at least 0" if zero else "more than 0"
        raise SluiceInputError(
            f"{what}: {value:g} must be {low} and at most {MAX_SECONDS:,.0f} s (a year)"
        )
    return value


def _memory(value: str | None, what: str, ceiling: int = MAX_MEMORY) -> int | None:
    if value is None:
        return None
    found = parse_memory(value, what=what)
    if found > ceiling:
        raise SluiceInputError(f"{what}: {str(value)[:40]!r} is more than {format_memory(ceiling)}")
    return found


def _cpu(value: float | str | None, what: str) -> float | None:
    if value is None:
        return None
    cores = parse_cpu(value, what=what)
    if not math.isfinite(cores) or cores <= 0 or cores > MAX_CPU:
        raise SluiceInputError(f"{what}: {value!r} must be more than 0 and at most {MAX_CPU:g}")
    return cores


def prepare(  # noqa: PLR0913 - one argument per flow parameter it checks
    settings: KaraboSettings,
    *,
    staging: str | None,
    processed: str | None,
    failed: str | None,
    ingestor: str,
    verify_timeout_seconds: float,
    scratch: Path,
    scratch_volume: str | None,
    backend: str,
    namespace: str | None,
    min_memory: str,
    memory_limit: str | None,
    cpu: float | str | None,
    cpu_limit: float | str | None,
    placement: Placement,
    simulation_timeout_seconds: float,
    report_dir: Path,
    ledger_url: str | None,
) -> Prepared:
    """Check every input that needs no server, in parameter order; probe local areas last."""
    chosen_ingestor = _choice(Ingestor, ingestor, "ingestor")
    verify = _seconds(verify_timeout_seconds, "verify_timeout_seconds", zero=True)
    volume = _memory(scratch_volume, "scratch_volume", MAX_VOLUME)
    chosen_backend = _choice(SimulationBackend, backend, "backend")
    if namespace is not None:
        KUBERNETES_NAMESPACE.check(namespace, "namespace")
    floor = _memory(min_memory, "min_memory")
    limit = _memory(memory_limit, "memory_limit")
    cores, cores_limit = _cpu(cpu, "cpu"), _cpu(cpu_limit, "cpu_limit")
    if cores_limit is not None and cores is not None and cores_limit < cores:
        raise SluiceInputError(f"cpu_limit: {cores_limit:g} is below the cpu request {cores:g}")
    if cores_limit is not None and cores is None:
        cores = cores_limit
    timeout = _seconds(simulation_timeout_seconds, "simulation_timeout_seconds", zero=False)
    check_ledger_url(ledger_url, name="ledger_url")
    if staging is not None and (processed is None or failed is None):
        raise SluiceInputError("processed/failed: give both ingestor areas when staging is given")
    check_directory(scratch, "scratch_dir")
    check_directory(report_dir, "report_dir")
    found = estimate(settings, min_memory_bytes=floor or 0)
    volume_bytes = volume or shutil.disk_usage(nearest_existing(scratch)).free
    refuse_if_too_big(found, volume_bytes)
    if limit is not None and limit < found.memory_bytes:
        raise SluiceInputError(
            f"memory_limit: {format_memory(limit)} is below the memory request "
            f"{format_memory(found.memory_bytes)} (max of min_memory and the estimate)"
        )
    for what, url, writable in (
        ("staging", staging, True),
        ("processed", processed, False),
        ("failed", failed, False),
    ):
        if url is not None and not url.startswith(("s3://", "gs://")):  # checked by the flow
            open_area(url).check(what=what, writable=writable)
    return Prepared(
        settings=settings,
        estimate=found,
        backend=chosen_backend,
        ingestor=chosen_ingestor,
        areas=(staging, processed, failed),
        scratch=scratch,
        report_dir=report_dir,
        volume_bytes=volume_bytes,
        memory_request_bytes=found.memory_bytes,
        memory_limit_bytes=limit or found.memory_bytes,
        cpu=cores,
        cpu_limit=cores_limit,
        placement=placement,
        verify_timeout_seconds=verify,
        simulation_timeout_seconds=timeout,
    )
