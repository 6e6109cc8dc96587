"""STAND-INS for the autoeval jobs, so a STAC batch can run without a cluster.

These are NOT the NGWPC jobs: they keep the jobs' interfaces (the seed's meta
contracts, the output layout, the ``Pipeline SUCCESS`` / ``Pipeline exiting
early`` / ``Pipeline FAILED`` log lines, exit 0 from the pipeline in all three
cases) but compute on tiny JSON "rasters" instead of GeoTIFFs:

- ``inundate --manifest M``: per row {catchment_data_path, forecast_path, output_path}
  the catchment is wet when a forecast discharge reaches its hydrotable threshold;
  writes ``{"catchment_id", "wet"}``. A failed row is reported, the others go on;
  exit 1 if any row failed.
- ``mosaic --manifest M``: per row {raster_paths (space-joined), output_path}: merges
  the extents that exist into ``{"cells": [...], "wet": [...]}``; a row with none fails.
- ``agreement --manifest M``: per row {candidate_path, benchmark_path, output_path,
  metrics_path}: TP/FP/FN/TN counts, CSI, TPR, FAR. No wet cell anywhere is the
  expected-empty case: "Agreement map contains no valid data", exit 0.
- ``pipeline``: the whole pipeline in one process from ``NOMAD_META_*`` variables
  (aoi, outputs_path, hand_index_path, benchmark_sources, tags) and ``STAC_API_URL``.

Addresses are local paths or ``s3://`` URLs (credentials from the environment).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys

from sluice.stac.logs import ENTRY_MARK
from sluice.stac.outputs import StorageRoot, read_url, write_url


def _csv(url: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(read_url(url).decode())))


def _json(url: str):
    return json.loads(read_url(url))


def _rows(manifest: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in read_url(manifest).decode().splitlines() if line]


def inundate_one(row: dict[str, str]) -> None:
    catchment = _json(row["catchment_data_path"])
    thresholds = {r["feature_id"]: float(r["threshold_cms"]) for r in _csv(catchment["csv_path"])}
    discharge = {r["feature_id"]: float(r["discharge"]) for r in _csv(row["forecast_path"])}
    wet = any(discharge.get(f, 0.0) >= t for f, t in thresholds.items())
    write_url(
        row["output_path"],
        json.dumps({"catchment_id": catchment["catchment_id"], "wet": wet}).encode(),
    )


def mosaic_one(row: dict[str, str]) -> None:
    cells: set[str] = set()
    wet: set[str] = set()
    found = 0
    for path in row["raster_paths"].split():
        try:
            extent = _json(path)
        except Exception:  # a missing catchment output is tolerated
            continue
        found += 1
        if "catchment_id" in extent:
            cells.add(extent["catchment_id"])
            if extent["wet"]:
                wet.add(extent["catchment_id"])
        else:
            cells.update(extent.get("cells", extent["wet"]))
            wet.update(extent["wet"])
    if not found:
        raise RuntimeError(f"no input raster exists for {row['output_path']}")
    write_url(row["output_path"], json.dumps({"cells": sorted(cells), "wet": sorted(wet)}).encode())


def agreement_one(row: dict[str, str]) -> str:
    candidate, benchmark = _json(row["candidate_path"]), _json(row["benchmark_path"])
    cells = set(candidate["cells"])
    predicted, observed = set(candidate["wet"]), set(benchmark["wet"]) & cells
    tp, fp, fn = len(predicted & observed), len(predicted - observed), len(observed - predicted)
    tn = len(cells) - tp - fp - fn
    status = "ok" if tp + fp + fn else "empty"
    write_url(row["output_path"], json.dumps({"status": status, "tp": tp, "fp": fp}).encode())
    metrics = {
        "true_positives_count": tp,
        "false_positives_count": fp,
        "false_negatives_count": fn,
        "true_negatives_count": tn,
        "CSI": tp / (tp + fp + fn) if status == "ok" else "",
        "TPR": tp / (tp + fn) if tp + fn else "",
        "FAR": fp / (tp + fp) if tp + fp else "",
    }
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(metrics))
    writer.writeheader()
    writer.writerow(metrics)
    write_url(row["metrics_path"], out.getvalue().encode())
    if status == "empty":
        print("Agreement map contains no valid data", file=sys.stderr)
    return status


STAGES = {"inundate": inundate_one, "mosaic": mosaic_one, "agreement": agreement_one}


def run_stage(stage: str, rows: list[dict[str, str]], marks: bool = False) -> int:
    """Run every row; the number that failed (each failure printed). With ``marks``, a
    stage job's ``sluice-entry <n>`` line precedes row ``n``'s output (Sluice splits
    the job's log per entry at them)."""
    failed = 0
    for n, row in enumerate(rows):
        if marks:
            print(f"{ENTRY_MARK} {n}", file=sys.stderr, flush=True)
        try:
            STAGES[stage](row)
        except Exception as exc:
            failed += 1
            print(f"{stage} failed for {row.get('output_path')}: {exc!r}", file=sys.stderr)
    return failed


def pipeline() -> int:
    """The pipeline job: plan, inundate, mosaic, agree in-process; exit 0 like the real one."""
    from pystac_client import Client

    from sluice.stac.inputs import read_gpkg_geometry
    from sluice.stac.stages import load_hand_index, plan_item

    meta = {
        k.removeprefix("NOMAD_META_"): v
        for k, v in os.environ.items()
        if k.startswith("NOMAD_META_")
    }
    tags = dict(t.split("=", 1) for t in meta.get("tags", "").split())
    aoi_name = tags["aoi_name"]
    print(f"meta: {json.dumps(meta, sort_keys=True)}", file=sys.stderr)
    key = os.environ.get("AWS_ACCESS_KEY_ID", "")  # a fingerprint shows it arrived, not the key
    print(f"aws credentials: {hashlib.sha256(key.encode()).hexdigest()[:12]}", file=sys.stderr)
    try:
        # the item by id in any collection, as the real pipeline's --aoi_is_item does
        item = next(Client.open(os.environ["STAC_API_URL"]).search(ids=[aoi_name]).items())
        stages = plan_item(
            item,
            meta["aoi"],
            StorageRoot(meta["outputs_path"]),
            load_hand_index(StorageRoot(meta["hand_index_path"])),
            float(os.environ.get("HAND_INDEX_OVERLAP_THRESHOLD_PERCENT", "40")),
            read_gpkg_geometry(read_url(meta["aoi"])),
        )
        if stages.expected_empty:
            print(
                f"Pipeline exiting early: no scenarios or catchments for {aoi_name}",
                file=sys.stderr,
            )
            return 0
        run_stage("inundate", stages.inundate)
        if run_stage("mosaic", stages.mosaic) or run_stage("agreement", stages.agreement):
            raise RuntimeError("a mosaic or agreement failed")
        n = len(stages.agreement)
        print(f"Pipeline SUCCESS {n}/{n}", file=sys.stderr)
    except Exception as exc:
        print(f"Pipeline FAILED: {exc!r}", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=[*STAGES, "pipeline"])
    parser.add_argument("--manifest", help="JSON-lines file of per-entry meta")
    args = parser.parse_args()
    if args.stage == "pipeline":
        return pipeline()
    return 1 if run_stage(args.stage, _rows(args.manifest), marks=True) else 0


if __name__ == "__main__":
    sys.exit(main())
