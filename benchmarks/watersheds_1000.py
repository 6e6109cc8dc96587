"""1,000 watersheds x 7 stages of no-op commands on the local backend.

Prints wall time, orchestrator peak RSS, Prefect task runs created vs recorded
(counted through the Prefect client after the run), ledger attempts, and the
time of a second run that finds every stage done. The anchor, measured in the same
run: Sluice's ``LocalBackend`` alone running as many no-op jobs at parallelism
``--pool-size`` (what the flow adds on top is planning, the ledger, run-directory
state, nested task runs and the worker pool).

    python benchmarks/watersheds_1000.py [--watersheds 1000] [--pool-size 3] [--max-chunks 24]
    python benchmarks/watersheds_1000.py --watersheds 143    # ~1,000 jobs on a shared machine
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import embedded_server, peak_rss_mib, task_runs_recorded  # noqa: E402

# landuse, soils, climate (2), wepp (2), watar: 7 stages per watershed.
TASKS = ["landuse", "soils", "climate", "wepp", "watar"]


def write_inputs(work: Path, count: int) -> dict[str, str]:
    rng = random.Random(5)
    features = []
    for i in range(count):
        side, x, y = rng.uniform(0.001, 0.1), rng.uniform(-120, -110), rng.uniform(40, 48)
        ring = [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]
        features.append(
            {
                "type": "Feature",
                "id": f"w{i}",
                "properties": {"HucName": f"Watershed {i}", "Region": "NW"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    geojson = work / "watersheds.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    base = work / "base"
    base.mkdir()
    for name in ("ron", "climate", "landuse", "soils", "wepp"):
        state = {"py/object": f"wepppy.nodb.{name}", "py/state": {"wd": str(base)}}
        (base / f"{name}.nodb").write_text(json.dumps(state))
    stages = work / "stages.yaml"
    stages.write_text('default:\n  command: ["true"]\n')
    return {"geojson": str(geojson), "base": str(base), "stages": str(stages)}


def backend_alone(jobs: int, parallelism: int, work: Path) -> float:
    """Wall seconds of ``LocalBackend`` running ``jobs`` no-op jobs, ``parallelism`` at once."""
    from sluice.backends.local import LocalBackend
    from sluice.jobs import JobSpec, Outcome

    specs = [JobSpec(name=f"anchor-{i}", command=["true"]) for i in range(jobs)]
    backend = LocalBackend(parallelism=parallelism, log_dir=work / "anchor-logs")
    began = time.perf_counter()
    backend.submit(specs)
    outcomes = [r.outcome for r in backend.wait([s.name for s in specs])]
    wall = time.perf_counter() - began
    backend.close()
    assert outcomes.count(Outcome.SUCCEEDED) == jobs, "some anchor jobs did not succeed"
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watersheds", type=int, default=1000)
    parser.add_argument("--pool-size", type=int, default=3)
    parser.add_argument("--max-chunks", type=int, default=24)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sluice-watersheds-bench-"))
    inputs = write_inputs(work, args.watersheds)

    with embedded_server():
        from sluice.flows.watersheds import create_watershed_batch, run_watershed_batch

        from sluice.ledger import open_ledger
        from sluice.watersheds.stages import WatershedTask, stages_for

        tasks = [WatershedTask(t) for t in TASKS]
        stages = len(stages_for(tasks))
        create_watershed_batch(
            "bench",
            inputs["base"],
            inputs["stages"],
            inputs["geojson"],
            "{slug(lower(properties['HucName']))}-{zfill(one_based_index, 4)}",
            root=str(work / "batches"),
        )
        began = time.perf_counter()
        state = run_watershed_batch(
            "bench",
            tasks=tasks,
            pool_size=args.pool_size,
            max_chunks=args.max_chunks,
            root=str(work / "batches"),
            return_state=True,
        )
        wall = time.perf_counter() - began
        summary = state.result()
        chunks = min(args.max_chunks, args.watersheds)
        created = chunks * (2 + stages) + 2  # chunk, start, waves; pool and summary
        recorded = task_runs_recorded(state.state_details.flow_run_id, created)
        ledger = open_ledger()
        attempts = ledger.attempts("watersheds/bench")
        ledger.close()
        began = time.perf_counter()
        again = run_watershed_batch(
            "bench", tasks=tasks, pool_size=args.pool_size, root=str(work / "batches")
        )
        rerun = time.perf_counter() - began
    anchor = backend_alone(len(attempts), args.pool_size, work)

    print(f"watersheds x stages        {args.watersheds} x {stages} (pool {args.pool_size})")
    print(f"machine load (1 min)       {os.getloadavg()[0]:.1f}")
    print(f"run wall time              {wall:.1f} s")
    print(f"jobs per second            {len(attempts) / wall:.1f}")
    print(
        f"anchor: backend alone      {anchor:.1f} s"
        f" ({len(attempts)} jobs, {args.pool_size} at once)"
    )
    print(f"flow / backend alone       {wall / anchor:.2f}x")
    print(f"orchestrator peak RSS      {peak_rss_mib():.0f} MiB")
    print(f"task runs created/recorded {created} / {recorded}")
    print(f"ledger attempts            {len(attempts)} ({summary.complete} runs complete)")
    print(f"second run (all done)      {rerun:.1f} s, complete {again.complete}")


if __name__ == "__main__":
    main()
