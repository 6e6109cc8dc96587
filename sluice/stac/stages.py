"""Stage mode planning: scenarios, catchments and the seed's stage meta contracts.

Stage mode runs the autoeval pipeline's stages from Prefect instead of inside a
``pipeline`` job: inundate (one entry per scenario x HAND catchment), mosaic
(HAND and benchmark per scenario), agreement (per scenario). Every stage job
takes a *manifest*: a JSON-lines file whose rows are exactly the meta the seed
passes to one ``hand_inundator`` / ``fim_mosaicker`` / ``agreement_maker``
dispatch, so that thousands of catchments become a few jobs, not thousands.

The HAND index Sluice reads is ``<hand_index_path>/catchments.geojson``: one
feature per catchment (EPSG:4326) with ``catchment_id``, ``csv_path``,
``rem_raster_path`` and ``catchment_raster_path`` (the three path tables of the
real parquet index, joined). Catchments are selected as the seed does: kept if
the catchment contains the AOI, lies within it, or covers at least
``overlap_percent`` of its own area inside it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pystac import Item
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from sluice.stac.outputs import StorageRoot

INDEX_FILE = "catchments.geojson"
_FIM_SCENARIO = re.compile(r"^(action|minor|moderate|major)_(extent_raster|flow_file)$")
_BLE_SCENARIO = re.compile(r"^(\d+yr)_(extent_raster|flow_file)$")


@dataclass(frozen=True)
class Catchment:
    catchment_id: str
    geometry: BaseGeometry
    paths: dict[str, str]


@dataclass
class Scenario:
    """One (collection, scenario) of an item: its flowfile and benchmark rasters."""

    collection: str
    name: str
    flow_file: str | None = None
    extent_rasters: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.collection}/{self.name}"


def scenarios(item: Item) -> list[Scenario]:
    """The seed's grouping of an item's assets (FIM and BLE collections).

    Scenarios without a flowfile or without benchmark rasters are dropped, as
    the seed silently does.
    """
    pattern = _BLE_SCENARIO if item.collection_id == "ble-collection" else _FIM_SCENARIO
    found: dict[str, Scenario] = {}
    for key, asset in sorted(item.assets.items()):
        if match := pattern.match(key):
            name, kind = match.groups()
            scenario = found.setdefault(name, Scenario(item.collection_id or "", name))
            if kind == "flow_file":
                scenario.flow_file = asset.href
            else:
                scenario.extent_rasters.append(asset.href)
    return [s for s in found.values() if s.flow_file and s.extent_rasters]


def load_hand_index(root: StorageRoot) -> list[Catchment]:
    """Every catchment of the index; relative paths resolved against the index root."""
    collection = json.loads(root.read(INDEX_FILE))
    catchments = []
    for feature in collection["features"]:
        props = dict(feature["properties"])
        cid = str(props.pop("catchment_id"))
        paths = {k: _resolve(root, v) for k, v in props.items() if k.endswith("_path")}
        catchments.append(Catchment(cid, shape(feature["geometry"]), paths))
    return catchments


def _resolve(root: StorageRoot, path: str) -> str:
    if "://" in path or path.startswith("/"):
        return path
    return root.url(path)


def select_catchments(
    index: list[Catchment], aoi: BaseGeometry, overlap_percent: float
) -> list[Catchment]:
    """The seed's rule: contains, within, or overlap >= ``overlap_percent`` of the catchment."""
    kept = []
    for catchment in index:
        geometry = catchment.geometry
        if not geometry.intersects(aoi):
            continue
        inside = geometry.area and geometry.intersection(aoi).area / geometry.area * 100
        if geometry.contains(aoi) or geometry.within(aoi) or inside >= overlap_percent:
            kept.append(catchment)
    return kept


def scenario_prefix(aoi: str, scenario: Scenario) -> str:
    """``{collection}/{scenario}/{aoi}__{collection}__{scenario}`` (the seed's PathFactory)."""
    return f"{scenario.collection}/{scenario.name}/{aoi}__{scenario.collection}__{scenario.name}"


@dataclass
class ItemStages:
    """Everything one item needs in stage mode, with the seed's output layout."""

    item_id: str
    outputs_path: str
    scenarios: list[Scenario]
    catchments: list[Catchment]
    inundate: list[dict[str, Any]] = field(default_factory=list)
    mosaic: list[dict[str, Any]] = field(default_factory=list)
    agreement: list[dict[str, Any]] = field(default_factory=list)

    @property
    def expected_empty(self) -> bool:
        """No scenario or no catchment: the seed's "Pipeline exiting early" (a success)."""
        return not self.scenarios or not self.catchments


def plan_item(
    item: Item,
    aoi_path: str,
    outputs: StorageRoot,
    index: list[Catchment],
    overlap_percent: float,
    aoi: BaseGeometry,
) -> ItemStages:
    """Select the item's catchments, write their data files and flowfiles, build stage meta.

    ``outputs`` is the item's own ``outputs_path`` (``<output_root>/<item id>/``).
    """
    stages = ItemStages(
        item_id=item.id,
        outputs_path=outputs.url(""),
        scenarios=scenarios(item),
        catchments=select_catchments(index, aoi, overlap_percent),
    )
    if stages.expected_empty:
        return stages
    data_paths = {
        c.catchment_id: outputs.write(
            f"catchment-data-indices/catchment-{c.catchment_id}.json",
            json.dumps({"catchment_id": c.catchment_id, **c.paths}).encode(),
        )
        for c in stages.catchments
    }
    for scenario in stages.scenarios:
        prefix = scenario_prefix(item.id, scenario)
        extents = []
        for catchment in stages.catchments:
            extent = outputs.url(
                f"{scenario.collection}/{scenario.name}/catchment-extents/"
                f"{scenario.collection}__{scenario.name}__catchment-{catchment.catchment_id}.json"
            )
            extents.append(extent)
            stages.inundate.append(
                {
                    "catchment_data_path": data_paths[catchment.catchment_id],
                    "forecast_path": scenario.flow_file,
                    "output_path": extent,
                }
            )
        hand_mosaic = outputs.url(f"{prefix}__inundate_mosaic.json")
        benchmark_mosaic = outputs.url(f"{prefix}__benchmark_mosaic.json")
        stages.mosaic += [
            {
                "raster_paths": " ".join(extents),
                "output_path": hand_mosaic,
                "clip_geometry_path": aoi_path,
            },
            {
                "raster_paths": " ".join(scenario.extent_rasters),
                "output_path": benchmark_mosaic,
                "clip_geometry_path": aoi_path,
            },
        ]
        stages.agreement.append(
            {
                "candidate_path": hand_mosaic,
                "benchmark_path": benchmark_mosaic,
                "output_path": outputs.url(f"{prefix}__agreement.json"),
                "metrics_path": outputs.url(f"{prefix}__metrics.csv"),
            }
        )
    return stages
