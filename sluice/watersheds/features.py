"""Watersheds from a GeoJSON FeatureCollection: structure checks, runids, area order."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.errors import SluiceInputError
from sluice.inputs import read_text_file
from sluice.watersheds.template import RunidTemplate, TemplateEvaluationError

MAX_RUNID_BYTES = 255

GEOJSON_MAX_BYTES = 512 * 1024 * 1024  # a whole state's watershed outlines fit


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
    duplicate: bool = False

    def __str__(self) -> str:
        named = f" (id {self.feature_id!r})" if self.feature_id is not None else ""
        return f"feature {self.index}{named}: {self.message}"


@dataclass(frozen=True)
class Validation:
    """Every feature's runid, or the problems that stop the batch."""

    watersheds: list[Watershed]
    problems: list[Problem]
    total: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def duplicates(self) -> dict[str, list[int]]:
        """Runids shared by more than one feature, with the features' indexes."""
        seen: dict[str, list[int]] = {}
        for watershed in self.watersheds:
            seen.setdefault(watershed.runid, []).append(watershed.index)
        return {runid: indexes for runid, indexes in seen.items() if len(indexes) > 1}

    def summary(self) -> dict[str, int | bool]:
        """wepppy's validation summary (``validate_template``), with the same keys."""
        errors = len({p.index for p in self.problems if not p.duplicate})
        return {
            "total_features": self.total,
            "errors": errors,
            "duplicate_run_ids": len(self.duplicates()),
            "unique_run_ids": len({w.runid for w in self.watersheds}),
            "valid_run_ids": self.total - errors,
            "is_valid": self.ok,
        }

    def report(self) -> dict[str, Any]:
        """wepppy's ``validate_template`` result: summary, errors, duplicates, one row a feature."""
        errors = {p.index: p for p in self.problems if not p.duplicate}
        runids = {w.index: w for w in self.watersheds}
        rows = [
            {
                "index": index,
                "feature_id": runids[index].feature_id
                if index in runids
                else errors[index].feature_id,
                "run_id": runids[index].runid if index in runids else None,
                "error": errors[index].message if index in errors else None,
            }
            for index in sorted(runids.keys() | errors.keys())
        ]
        return {
            "summary": self.summary(),
            "errors": [
                {"index": p.index, "feature_id": p.feature_id, "error": p.message}
                for p in errors.values()
            ],
            "duplicates": [
                {"run_id": runid, "count": len(indexes), "indexes": indexes}
                for runid, indexes in self.duplicates().items()
            ],
            "rows": rows,
        }

    def raise_for_problems(self, source: str) -> None:
        if self.problems:
            shown = "; ".join(str(p)[:200] for p in self.problems[:3])
            more = f"; and {len(self.problems) - 3} more" if len(self.problems) > 3 else ""
            raise SluiceInputError(f"{source}: {len(self.problems)} problem(s): {shown}{more}")


def load_features(path: str | Path) -> list[dict[str, Any]]:
    """The features of a GeoJSON FeatureCollection file; SluiceInputError naming the file."""
    path = Path(path)
    text = read_text_file(path, what="GeoJSON", max_bytes=GEOJSON_MAX_BYTES)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
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
    """Why ``runid`` cannot be a directory name under ``runs/`` (None when it can).

    wepppy itself marks a run invalid when its runid is ``.``/``..`` or holds ``/``, ``\\``
    or NUL; Sluice also refuses control and bidi-override characters (a name that shows
    differently from what it is) and names longer than a filesystem allows (255 bytes).
    """
    if not runid:
        return "empty runid"
    why = None
    if runid in {".", ".."}:
        why = f"{runid!r} names the directory itself or its parent"
    elif "/" in runid or "\\" in runid:
        why = "it contains a path separator"
    elif any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} for c in runid):
        why = "it contains a control, format or line-separator character"
    elif len(runid.encode("utf-8")) > MAX_RUNID_BYTES:
        why = f"it is longer than {MAX_RUNID_BYTES} bytes in UTF-8"
    if why:
        return f"runid {runid[:80]!r} is not a safe directory name: {why}"
    return None


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


def validate(
    features: list[Any], template: RunidTemplate | str, *, fold_case: bool = False
) -> Validation:
    """Render every feature's runid; collect structure, template, safety and duplicate problems.

    A template that does not parse is an error on every feature, as wepppy reports it.
    Runids are duplicates only when equal: wepppy keeps ``Alpha`` and ``alpha`` apart.
    ``fold_case`` (the batch's storage is case-insensitive, so they would share one run
    directory) makes runids differing only in case duplicates too, saying so.
    """
    if isinstance(template, str):
        try:
            template = RunidTemplate(template)
        except SluiceInputError as exc:
            refused = [Problem(i, _feature_id(f), str(exc)) for i, f in enumerate(features)]
            return Validation([], refused, len(features))
    watersheds: list[Watershed] = []
    problems: list[Problem] = []
    for result in _rendered(features, template):
        if isinstance(result, Watershed):
            watersheds.append(result)
        else:
            problems.append(result)
    first: dict[str, Watershed] = {}
    for watershed in watersheds:
        key = watershed.runid.casefold() if fold_case else watershed.runid
        earlier = first.setdefault(key, watershed)
        if earlier is watershed:
            continue
        message = f"runid {watershed.runid!r} duplicates feature {earlier.index}'s"
        if earlier.runid != watershed.runid:
            message = (
                f"runid {watershed.runid!r} differs only in case from feature {earlier.index}'s "
                f"{earlier.runid!r}, and the batch's storage does not tell case apart"
            )
            problems.append(Problem(watershed.index, watershed.feature_id, message))
        else:
            problems.append(Problem(watershed.index, watershed.feature_id, message, True))
    problems.sort(key=lambda p: p.index)
    return Validation(watersheds, problems, len(features))


def largest_first(watersheds: list[Watershed]) -> list[Watershed]:
    """Run order: largest area first, then feature order."""
    return sorted(watersheds, key=lambda w: (-w.area, w.index))
