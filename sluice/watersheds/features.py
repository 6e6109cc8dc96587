"""Watersheds from a GeoJSON FeatureCollection: structure checks, runids, area order."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.errors import SluiceInputError
from sluice.names import RUNID
from sluice.watersheds.template import RunidTemplate, TemplateEvaluationError


@dataclass(frozen=True)
class Watershed:
    """One feature with its runid; ``area`` (planar, coordinate units squared) orders the run."""

    index: int
    feature_id: str | None
    runid: str
    area: float


@dataclass(frozen=True)
class Problem:
    """Why one feature cannot become a run."""

    index: int
    feature_id: str | None
    message: str

    def __str__(self) -> str:
        named = f" (id {self.feature_id!r})" if self.feature_id is not None else ""
        return f"feature {self.index}{named}: {self.message}"


@dataclass(frozen=True)
class Validation:
    """Every feature's runid, or the problems that stop the batch."""

    watersheds: list[Watershed]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self, source: str) -> None:
        if self.problems:
            shown = "; ".join(map(str, self.problems[:20]))
            more = f"; and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
            raise SluiceInputError(f"{source}: {len(self.problems)} problem(s): {shown}{more}")


def load_features(path: str | Path) -> list[dict[str, Any]]:
    """The features of a GeoJSON FeatureCollection file; SluiceInputError naming the file."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SluiceInputError(f"GeoJSON {str(path)!r}: cannot read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SluiceInputError(f"GeoJSON {str(path)!r}: not valid JSON ({exc})") from None
    if not isinstance(payload, dict) or payload.get("type") != "FeatureCollection":
        raise SluiceInputError(f"GeoJSON {str(path)!r}: not a FeatureCollection")
    features = payload.get("features")
    if not isinstance(features, list) or not features:
        raise SluiceInputError(f"GeoJSON {str(path)!r}: no features")
    return features


def checksum(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _structure_problem(feature: Any) -> str | None:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return "not a GeoJSON Feature"
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or not isinstance(geometry.get("type"), str):
        return "geometry missing"
    if geometry.get("coordinates") is None and geometry["type"] != "GeometryCollection":
        return "geometry has no coordinates"
    if not isinstance(feature.get("properties"), dict):
        return "properties is not an object"
    return None


def runid_problem(runid: str) -> str | None:
    """Why ``runid`` cannot be a directory name under ``runs/``, or None."""
    if not runid:
        return "empty runid"
    if (problem := RUNID.problem(runid)) is None:
        return None
    return f"runid {runid[:80]!r} {problem}"


def _ring_area(ring: Any) -> float:
    points = [p for p in ring if isinstance(p, list | tuple) and len(p) >= 2]
    twice = sum(
        float(a[0]) * float(b[1]) - float(b[0]) * float(a[1])
        for a, b in zip(points, points[1:] + points[:1], strict=True)
    )
    return abs(twice) / 2.0


def planar_area(geometry: dict[str, Any]) -> float:
    """Shoelace area of (Multi)Polygons in coordinate units; 0 for other geometries."""
    coords = geometry.get("coordinates") or []
    try:
        if geometry.get("type") == "Polygon":
            polygons = [coords]
        elif geometry.get("type") == "MultiPolygon":
            polygons = coords
        else:
            return 0.0
        return sum(
            _ring_area(rings[0]) - sum(_ring_area(hole) for hole in rings[1:])
            for rings in polygons
            if rings
        )
    except (TypeError, ValueError):
        return 0.0


def _feature_id(feature: Any) -> str | None:
    value = feature.get("id") if isinstance(feature, dict) else None
    return None if value is None else str(value)


def _rendered(features: list[Any], template: RunidTemplate) -> Iterator[Watershed | Problem]:
    for index, feature in enumerate(features):
        feature_id = _feature_id(feature)
        if problem := _structure_problem(feature):
            yield Problem(index, feature_id, problem)
            continue
        try:
            runid = template.render(feature, index)
        except TemplateEvaluationError as exc:
            yield Problem(index, feature_id, str(exc))
            continue
        if problem := runid_problem(runid):
            yield Problem(index, feature_id, problem)
            continue
        yield Watershed(index, feature_id, runid, planar_area(feature["geometry"]))


def validate(features: list[Any], template: RunidTemplate) -> Validation:
    """Render every feature's runid; collect structure, template, safety and duplicate problems."""
    watersheds: list[Watershed] = []
    problems: list[Problem] = []
    for result in _rendered(features, template):
        (watersheds if isinstance(result, Watershed) else problems).append(result)
    seen: dict[str, Watershed] = {}
    for watershed in watersheds:
        first = seen.setdefault(watershed.runid.casefold(), watershed)
        if first is not watershed:
            problems.append(
                Problem(
                    watershed.index,
                    watershed.feature_id,
                    f"runid {watershed.runid!r} duplicates feature {first.index}'s {first.runid!r}",
                )
            )
    problems.sort(key=lambda p: p.index)
    return Validation(watersheds, problems)


def largest_first(watersheds: list[Watershed]) -> list[Watershed]:
    """Run order: largest area first, then feature order."""
    return sorted(watersheds, key=lambda w: (-w.area, w.index))
