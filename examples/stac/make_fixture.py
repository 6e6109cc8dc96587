"""Write a small STAC fixture for trying ``sluice stac-batch`` without NGWPC's data.

    python examples/stac/make_fixture.py DIR
    rustac serve --addr 127.0.0.1:7822 DIR/nws-fim-collection.json \
        DIR/usgs-fim-collection.json DIR/items.json

DIR gets two collections, ``items.json`` (six items with flowfile and benchmark
assets, absolute hrefs), ``item-list.txt``, and a stand-in HAND index
(``hand_index/catchments.geojson`` over a 6 x 6 grid of square catchments).
Item ``ahps-empty-nws`` lies outside every catchment (expected empty: a
success); item ``ahps-fail-nws`` points at a flowfile that does not exist (its
pipeline fails until that file is written).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORIGIN = (-70.0, 44.0)
STEP = 0.01
GRID = 6
# item id -> (collection, (i0, j0, i1, j1) cells covered, scenario -> discharge factor)
ITEMS = {
    "ahps-aaa1-nws": ("nws-fim-collection", (0, 0, 2, 2), {"major": 1.6, "moderate": 1.1}),
    "ahps-bbb2-nws": ("nws-fim-collection", (3, 3, 5, 5), {"major": 1.4}),
    "ahps-ccc3-nws": ("nws-fim-collection", (1, 2, 3, 4), {"minor": 0.2}),
    "ahps-ddd4-usgs": ("usgs-fim-collection", (2, 0, 4, 2), {"major": 1.3}),
    "ahps-empty-nws": ("nws-fim-collection", (40, 40, 41, 41), {"major": 1.5}),
    "ahps-fail-nws": ("nws-fim-collection", (0, 4, 1, 5), {"major": 1.5}),
}


def cell_box(i0: float, j0: float, i1: float, j1: float) -> list[list[float]]:
    x0, y0 = ORIGIN[0] + i0 * STEP, ORIGIN[1] + j0 * STEP
    x1, y1 = ORIGIN[0] + i1 * STEP, ORIGIN[1] + j1 * STEP
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def threshold(i: int, j: int) -> float:
    return 10.0 + 5.0 * ((i + j) % 4)


def collection(cid: str) -> dict:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": cid,
        "description": f"Stand-in {cid} for Sluice's examples",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
        },
        "links": [],
    }


def write_hand_index(root: Path) -> None:
    features = []
    for i in range(GRID):
        for j in range(GRID):
            cid = f"c{i}{j}"
            (root / "hydrotables").mkdir(parents=True, exist_ok=True)
            (root / "hydrotables" / f"{cid}.csv").write_text(
                f"feature_id,threshold_cms\n{1000 + i * GRID + j},{threshold(i, j)}\n"
            )
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [cell_box(i, j, i + 1, j + 1)]},
                    "properties": {
                        "catchment_id": cid,
                        "csv_path": f"hydrotables/{cid}.csv",
                        "rem_raster_path": f"rems/{cid}.tif",
                        "catchment_raster_path": f"catchments/{cid}.tif",
                    },
                }
            )
    (root / "catchments.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )


def write_item(root: Path, item_id: str, cid: str, cells: tuple, factors: dict) -> dict:
    i0, j0, i1, j1 = cells
    assets = {}
    folder = root / "assets" / item_id
    folder.mkdir(parents=True, exist_ok=True)
    for scenario, factor in factors.items():
        flows = ["feature_id,discharge"]
        truth = []
        for i in range(i0, i1):
            for j in range(j0, j1):
                flows.append(f"{1000 + i * GRID + j},{threshold(i, j) * factor:.2f}")
                if threshold(i, j) * factor >= threshold(i, j) - 3 and factor > 0.5:
                    truth.append(f"c{i}{j}")
        flow_file = folder / f"{scenario}_flow_file.csv"
        if item_id != "ahps-fail-nws":
            flow_file.write_text("\n".join(flows) + "\n")
        extent = folder / f"{scenario}_extent_raster.json"
        extent.write_text(json.dumps({"wet": truth}))
        assets[f"{scenario}_flow_file"] = {"href": str(flow_file), "type": "text/csv"}
        assets[f"{scenario}_extent_raster"] = {"href": str(extent), "type": "application/json"}
    # two squares: the FIM collections' AOI is their convex hull
    polygons = [
        [cell_box(i0 + 0.1, j0 + 0.1, i0 + 0.6, j0 + 0.6)],
        [cell_box(i1 - 0.6, j1 - 0.6, i1 - 0.1, j1 - 0.1)],
    ]
    geometry = {"type": "MultiPolygon", "coordinates": polygons}
    xs = [p[0] for poly in polygons for p in poly[0]]
    ys = [p[1] for poly in polygons for p in poly[0]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": cid,
        "geometry": geometry,
        "bbox": [min(xs), min(ys), max(xs), max(ys)],
        "properties": {"datetime": "2024-05-01T00:00:00Z", "gauge": item_id.split("-")[1]},
        "links": [],
        "assets": assets,
    }


def write_fixture(root: Path) -> Path:
    """Write the fixture under ``root`` (absolute asset hrefs); returns ``root``."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    for cid in ("nws-fim-collection", "usgs-fim-collection"):
        (root / f"{cid}.json").write_text(json.dumps(collection(cid)))
    items = [write_item(root, iid, cid, cells, f) for iid, (cid, cells, f) in ITEMS.items()]
    (root / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    (root / "item-list.txt").write_text("\n".join(ITEMS) + "\n")
    write_hand_index(root / "hand_index")
    return root


if __name__ == "__main__":
    print(write_fixture(Path(sys.argv[1] if len(sys.argv) > 1 else "stac-fixture")))
