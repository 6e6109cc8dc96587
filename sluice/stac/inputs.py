"""A batch's items: an item-id list looked up in a STAC API, or a search; their AOIs.

As the seed does, each item's AOI is its geometry (the convex hull for the FIM
collections) written as a one-feature GeoPackage (EPSG:4326, columns ``item_id`` and
``collection``, layer ``stac_<id>``) to ``<temp_dir>/stac_<id>.gpkg``, then copied to
``<output_root>/AOIs/stac_<id>.gpkg``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyogrio.raw
import shapely
from pystac import Item
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from urllib3.util.retry import Retry

from sluice.errors import SluiceInputError
from sluice.inputs import read_text_file
from sluice.names import ITEM_ID
from sluice.stac.outputs import StorageRoot

HULL_COLLECTIONS = ("ble-collection", "nws-fim-collection", "usgs-fim-collection")
LOOKUP_PAGE = 100


@dataclass(frozen=True)
class Lookup:
    """Items found, in the order asked, and ids that no collection holds."""

    items: list[Item]
    missing: list[str]


def read_item_list(
    path: str | Path, *, what: str = "--item_list", required: bool = True
) -> list[str]:
    """Item ids, one per line (blank lines and ``#`` comments skipped, duplicates dropped);
    an empty list is refused when ``required``."""
    lines = read_text_file(path, what=what, max_bytes=64 * 1024 * 1024).splitlines()
    ids: dict[str, None] = {}
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            ids[ITEM_ID.check(text, f"{what} {path}:{number}")] = None
    if required and not ids:
        raise SluiceInputError(f"{what} {path}: no item ids")
    return list(ids)


def open_catalog(url: str) -> Client:
    """A pystac-client ``Client`` for ``url``, or a one-line error if it is unreachable.

    Requests are retried (connection faults, 502/503/504) without urllib3 logging
    a warning per retry: the outcome is reported once, here.
    """
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    retry = Retry(total=3, backoff_factor=0.3, status_forcelist=[502, 503, 504])
    try:
        return Client.open(url, stac_io=StacApiIO(max_retries=retry))
    except Exception as exc:  # connection refused, DNS, not a STAC API...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SluiceInputError(f"--stac_api_url {url}: unreachable ({reason})") from exc


def lookup_items(
    client: Client, ids: Sequence[str], collection: str | None, page_size: int = LOOKUP_PAGE
) -> Lookup:
    """Find ``ids`` by id, as the seed does: in ``collection`` when given, else in every
    collection (the first match wins). One search per page of ids, not one per id."""
    found: dict[str, Item] = {}
    for start in range(0, len(ids), page_size):
        page = list(ids[start : start + page_size])
        try:
            search = client.search(
                ids=page,
                collections=[collection] if collection else None,
                max_items=len(page) * 4,
            )
            for item in search.items():
                found.setdefault(item.id, item)
        except APIError as exc:
            raise SluiceInputError(f"--stac_api_url: search failed ({exc})") from exc
    return Lookup(
        items=[found[i] for i in ids if i in found], missing=[i for i in ids if i not in found]
    )


def search_items(
    client: Client,
    collections: Sequence[str],
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    max_items: int | None = None,
) -> list[Item]:
    """Items of a search (collections, bbox, datetime), by POST as pystac-client does."""
    try:
        items = list(
            client.search(
                collections=list(collections),
                bbox=None if bbox is None else list(bbox),
                datetime=datetime,
                max_items=max_items,
            ).items()
        )
    except APIError as exc:
        raise SluiceInputError(f"--stac_api_url: search failed ({exc})") from exc
    for item in items:  # an id the API made up still becomes file names and keys
        ITEM_ID.check(item.id, "--stac_api_url: search result")
    return items


def aoi_geometry(item: Item) -> BaseGeometry:
    """The item's AOI: the convex hull for the FIM collections, else its geometry."""
    if item.geometry is None:
        raise SluiceInputError(f"STAC item {item.id!r}: no geometry (its AOI is its geometry)")
    geometry = shape(item.geometry)
    if item.collection_id in HULL_COLLECTIONS:
        return geometry.convex_hull
    return geometry


def aoi_relative_path(item_id: str) -> str:
    return f"AOIs/stac_{item_id}.gpkg"


def write_gpkg(geometry: BaseGeometry, item_id: str, collection: str, directory: Path) -> Path:
    """``<directory>/stac_<id>.gpkg``: the AOI as the seed writes it (one feature)."""
    path = directory / f"stac_{item_id}.gpkg"
    path.unlink(missing_ok=True)
    pyogrio.raw.write(
        path,
        geometry=np.array([shapely.to_wkb(geometry)], dtype=object),
        field_data=[np.array([item_id], dtype=object), np.array([collection], dtype=object)],
        fields=["item_id", "collection"],
        geometry_type=geometry.geom_type,
        crs="EPSG:4326",
        layer=path.stem,
        driver="GPKG",
    )
    return path


def gpkg_bytes(geometry: BaseGeometry, item_id: str, collection: str = "") -> bytes:
    """The AOI GeoPackage's bytes (written in a throwaway directory)."""
    with tempfile.TemporaryDirectory() as tmp:
        return write_gpkg(geometry, item_id, collection, Path(tmp)).read_bytes()


def read_gpkg_geometry(data: bytes) -> BaseGeometry:
    """The first feature's geometry of a GeoPackage (as the real pipeline uses it)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "aoi.gpkg")
        path.write_bytes(data)
        geometries = pyogrio.raw.read(path, max_features=1)[2]
        return shapely.from_wkb(geometries[0])


def write_aois(
    root: StorageRoot, items: Iterable[Item], temp_dir: Path, local_output: bool = False
) -> dict[str, str]:
    """Write every item's AOI GeoPackage in ``temp_dir`` and copy it under ``root``;
    item id -> the address a job is given (``job_path`` with ``local_output``)."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    addresses = {}
    for item in items:
        local = write_gpkg(aoi_geometry(item), item.id, item.collection_id or "", temp_dir)
        address = root.write(aoi_relative_path(item.id), local.read_bytes())
        addresses[item.id] = job_path(address) if local_output else address
    return addresses


def job_path(address: str) -> str:
    """The address a job sees with ``--use-local-output``, as the seed's: a local path
    under ``local-batches/`` becomes ``/local-batches/...`` (its local job specs mount it)."""
    if "/local-batches/" not in address:
        return address
    return "/local-batches/" + str(Path(address).resolve()).split("/local-batches/")[-1]
