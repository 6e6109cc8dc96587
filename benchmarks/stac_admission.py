"""STAC batch admission against the Nomad double: max active, API requests and gate cost per item.

The whole ``stac-batch`` flow in pipeline mode (items looked up in a rustac STAC
API, AOIs written, chunk task runs on an embedded Prefect server) dispatches
``--items`` pipelines into the Nomad double, whose ``pipeline`` job runs ``sleep
--sleep`` (then logs "Pipeline SUCCESS") as a local process. Pacing is the batch's own
``Pacer``, or with ``--shared-limit`` a Prefect rate limit (the anchor: what pacing
cost before). Printed:

- max active pipelines: the most dispatched pipeline jobs alive at once, computed
  afterwards from the double's own job records (dispatch time .. end of the last
  allocation), not from the gate; it must never exceed ``--stop``;
- Nomad API requests per item (every request the double served during the flow);
- the gate's overhead per item (time in the gate while not paused: counting + pacing),
  and pacing's share against the ``--wait-seconds`` asked.

    python benchmarks/stac_admission.py [--items 1000] [--stop 30] [--resume 15] [--sleep 1]
        [--wait-seconds 0.01] [--shared-limit]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import embedded_server, free_port  # noqa: E402
from sluice.backends.nomad.specs import SPEC_DIR  # noqa: E402
from sluice.stac.batch import StacBackend  # noqa: E402
from tests.nomad_double.fixture import NomadApiFixture  # noqa: E402


def write_items(root: Path, count: int) -> Path:
    """A collection and ``count`` small items (all in one STAC API)."""
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "nws-fim-collection",
        "description": "benchmark",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
        },
        "links": [],
    }
    features: list[dict[str, Any]] = []
    for n in range(count):
        x, y = -100 + (n % 100) * 0.01, 40 + (n // 100) * 0.01
        ring = [[x, y], [x + 0.005, y], [x + 0.005, y + 0.005], [x, y + 0.005], [x, y]]
        features.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": f"bench-{n:05d}",
                "collection": "nws-fim-collection",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "bbox": [x, y, x + 0.005, y + 0.005],
                "properties": {"datetime": "2024-01-01T00:00:00Z"},
                "links": [],
                "assets": {},
            }
        )
    (root / "collection.json").write_text(json.dumps(collection))
    (root / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    (root / "item-list.txt").write_text("".join(f["id"] + "\n" for f in features))
    return root


def pipeline_spec(root: Path, sleep: float) -> Path:
    spec = json.loads((SPEC_DIR / "pipeline.nomad.json").read_text())
    script = f"sleep {sleep}; echo 'Pipeline SUCCESS: 1/1 scenarios completed' >&2"
    spec["Job"]["TaskGroups"][0]["Tasks"][0]["Config"] = {"command": "sh", "args": ["-c", script]}
    folder = root / "specs"
    folder.mkdir()
    (folder / "pipeline.nomad.json").write_text(json.dumps(spec))
    return folder


def max_alive(double: NomadApiFixture) -> tuple[int, int]:
    """(most pipeline dispatches alive at once, how many were dispatched), from the double."""
    events = []
    from sluice.backends.nomad import NomadApi

    api = NomadApi(double.settings())
    stubs = [s for s in api.client.jobs.get_jobs(prefix="pipeline") if "/dispatch-" in s["ID"]]
    for stub in stubs:
        start = stub["SubmitTime"] / 1e9
        allocations = api.client.job.get_allocations(stub["ID"])
        end = max(
            (
                max(e["Time"] for s in a["TaskStates"].values() for e in s["Events"]) / 1e9
                for a in allocations
                if a.get("TaskStates")
            ),
            default=start,
        )
        events += [(start, 1), (end, -1)]
    best = alive = 0
    for _, delta in sorted(events):
        alive += delta
        best = max(best, alive)
    return best, len(stubs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--stop", type=int, default=30)
    parser.add_argument("--resume", type=int, default=15)
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds each pipeline runs")
    parser.add_argument("--wait-seconds", type=float, default=0.01, help="pacing (rate limit)")
    parser.add_argument("--chunk-size", type=int, default=50)
    parser.add_argument(
        "--shared-limit", action="store_true", help="pace through a Prefect rate limit"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sluice-stac-bench-"))
    write_items(root, args.items)
    port = free_port()
    rustac = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "rustac"),
            "serve",
            "--addr",
            f"127.0.0.1:{port}",
            str(root / "collection.json"),
            str(root / "items.json"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    double = NomadApiFixture(root / "nomad", token="bench", slots=args.stop + 8).start()
    os.environ.update(
        NOMAD_ADDR=double.url,
        NOMAD_TOKEN="bench",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
    )
    try:
        with embedded_server():
            from sluice.flows.stac_batch import stac_batch

            time.sleep(1.0)  # let rustac bind (benchmark only; tests wait on readiness)
            double.requests.clear()
            started = time.monotonic()
            summary = stac_batch(
                batch_name="bench",
                output_root=str(root / "out"),
                hand_index_path=str(root / "hand"),
                stac_api_url=f"http://127.0.0.1:{port}",
                benchmark_sources=["nws-fim-collection"],
                item_list=str(root / "item-list.txt"),
                wait_seconds=args.wait_seconds,
                stop_threshold=args.stop,
                resume_threshold=args.resume,
                use_local_creds=True,
                backend=StacBackend.NOMAD,
                chunk_size=args.chunk_size,
                nomad_spec_dir=str(pipeline_spec(root, args.sleep)),
                report_dir=str(root / "report"),
                temp_dir=str(root / "aois"),
                rate_limit_name="sluice-stac-bench" if args.shared_limit else None,
            )
            elapsed = time.monotonic() - started
            requests = double.total_requests
            by_route = double.requests.most_common(6)
            alive, dispatched = max_alive(double)
    finally:
        double.stop()
        rustac.terminate()
    print(
        f"items                  {args.items} (stop {args.stop} / resume {args.resume}, "
        f"pipeline = sleep {args.sleep} s, wait_seconds {args.wait_seconds})"
    )
    print(f"succeeded              {summary['success']} of {args.items}; dispatched {dispatched}")
    print(f"wall time              {elapsed:.1f} s")
    print(
        f"max active pipelines   {alive} (from the double's records; gate saw "
        f"{summary['max_active']}); pauses {summary['pauses']}"
    )
    print(f"Nomad API requests     {requests} = {requests / args.items:.2f} per item")
    print(f"  top routes           {by_route}")
    print(
        f"gate overhead          {summary['gate_overhead_ms_per_item']:.2f} ms per item, of which "
        f"pacing ({'Prefect rate_limit' if args.shared_limit else 'Pacer'}) "
        f"{summary['pacing_ms_per_item']:.2f} ms, asked {1000 * args.wait_seconds:.2f} ms "
        f"({summary['counts']} counts; paused {summary['paused_seconds']:.1f} s in total)"
    )


if __name__ == "__main__":
    main()
