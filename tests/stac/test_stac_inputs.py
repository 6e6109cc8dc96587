"""Item lookups and searches against the rustac STAC API; AOIs as GeoPackages."""

from __future__ import annotations

import pyogrio
import pyogrio.raw
import pytest
import shapely

from sluice.errors import SluiceInputError
from sluice.stac.inputs import (
    aoi_geometry,
    gpkg_bytes,
    job_path,
    lookup_items,
    open_catalog,
    read_gpkg_geometry,
    read_item_list,
    search_items,
)
from sluice.stac.outputs import StorageRoot
from sluice.stac.stages import load_hand_index, scenarios, select_catchments


def test_lookup_pages_ids_and_lists_the_missing(stac_api):
    ids = ["ahps-bbb2-nws", "nope", "ahps-aaa1-nws", "ahps-ddd4-usgs"]
    client = open_catalog(stac_api)
    found = lookup_items(client, ids, "nws-fim-collection", page_size=2)  # pages of ids
    assert [i.id for i in found.items] == ["ahps-bbb2-nws", "ahps-aaa1-nws"]
    assert found.missing == ["nope", "ahps-ddd4-usgs"]  # not in the collection asked
    # without --collection, as the seed: every collection
    found = lookup_items(client, ids, None, page_size=3)
    assert [i.id for i in found.items] == ["ahps-bbb2-nws", "ahps-aaa1-nws", "ahps-ddd4-usgs"]
    assert found.missing == ["nope"]
    assert found.items[2].collection_id == "usgs-fim-collection"


def test_search_by_bbox_and_datetime(stac_api):
    client = open_catalog(stac_api)
    box = [-70.0, 44.0, -69.98, 44.02]
    ids = {i.id for i in search_items(client, ["nws-fim-collection"], box, "2024-01-01/..")}
    assert "ahps-aaa1-nws" in ids and "ahps-empty-nws" not in ids
    assert search_items(client, ["nws-fim-collection"], box, "2000-01-01/2001-01-01") == []


def test_fim_aoi_is_the_convex_hull_and_survives_a_geopackage(stac_api, tmp_path):
    item = lookup_items(open_catalog(stac_api), ["ahps-aaa1-nws"], None).items[0]
    aoi = aoi_geometry(item)
    assert aoi.geom_type == "Polygon"
    assert aoi.area > shapely.geometry.shape(item.geometry).area  # the hull fills the gap
    data = gpkg_bytes(aoi, item.id, item.collection_id)
    assert read_gpkg_geometry(data).equals(aoi)
    path = tmp_path / "aoi.gpkg"  # the seed's schema: item_id and collection, one feature
    path.write_bytes(data)
    meta, _, _, fields = pyogrio.raw.read(path)
    assert list(meta["fields"]) == ["item_id", "collection"]
    assert [list(f) for f in fields] == [[item.id], ["nws-fim-collection"]]
    assert pyogrio.list_layers(path)[0][0] == f"stac_{item.id}"


def test_local_output_paths_as_the_seed(tmp_path):
    local = tmp_path / "repo" / "local-batches" / "b1" / "AOIs" / "stac_x.gpkg"
    assert job_path(str(local)) == "/local-batches/b1/AOIs/stac_x.gpkg"
    assert job_path("/data/out/AOIs/stac_x.gpkg") == "/data/out/AOIs/stac_x.gpkg"


def test_catchments_and_scenarios_follow_the_seed(stac_api, stac_fixture):
    item = lookup_items(open_catalog(stac_api), ["ahps-aaa1-nws"], None).items[0]
    assert [s.name for s in scenarios(item)] == ["major", "moderate"]
    index = load_hand_index(StorageRoot(str(stac_fixture / "hand_index")))
    kept = {c.catchment_id for c in select_catchments(index, aoi_geometry(item), 40.0)}
    assert {"c00", "c11"} <= kept and "c55" not in kept
    assert select_catchments(index, shapely.box(-60, 40, -59.9, 40.1), 40.0) == []


def test_item_list_format(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("# batch\na-1\n\nb-2  # trailing comment\na-1\n")
    assert read_item_list(path) == ["a-1", "b-2"]
    path.write_text("")
    with pytest.raises(SluiceInputError, match="no item ids"):
        read_item_list(path)


def test_a_batch_prepared_by_the_cli_is_not_prepared_again(stac_api, stac_fixture, tmp_path):
    from sluice.stac.prepare import hand_to_flow, prepare_batch

    items = tmp_path / "items.txt"
    items.write_text("ahps-aaa1-nws\n")
    inputs = dict(
        output_root=str(tmp_path / "out"),
        hand_index_path=str(stac_fixture / "hand_index"),
        stac_api_url=stac_api,
        sources=[],
        collection=None,
        item_list=str(items),
        resubmit_failed=None,
        search_bbox=None,
        search_datetime=None,
        stop_threshold=3,
        resume_threshold=1,
        wait_seconds=0.0,
        chunk_size=1,
        use_local_creds=False,
        aws_credentials=None,
        stage_mode=False,
        stop_on_missing=False,
        max_tier=1,
        temp_dir=str(tmp_path / "aois"),
    )
    prepared = prepare_batch(**inputs)
    hand_to_flow(prepared)
    assert prepare_batch(**inputs) is prepared  # the flow's call: handed over, once
    again = prepare_batch(**inputs)
    assert again is not prepared and [i.id for i in again.items] == ["ahps-aaa1-nws"]
