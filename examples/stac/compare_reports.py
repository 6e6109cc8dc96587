"""Compare ``sluice stac-report`` with autoeval-coordinator's real ``local_reports.py``.

    python examples/stac/compare_reports.py PATH/TO/local_reports.py
    python examples/stac/compare_reports.py PATH/TO/local_reports.py \
        --run_list RUN_LIST --log_dir LOG_DIR

Both read the same log tree (the seed's layout: ``<log_dir>/<job>/<dispatched job
id>/<task>.stderr.*``) and run list, each writes its report into a temporary
directory, and every difference is printed: a file only one of them wrote, a line
only one of them has, a JSON row only one of them has (JSON rows are compared as
sets: the seed lists them in directory order). Without ``--log_dir`` the tree is
``OUTCOMES``: one AOI per outcome the seed's rules tell apart. Exit 1 on any
difference. Sluice's own additions (``not_found_aois.txt``, ``outcomes.json``,
``summary.json``) are not compared.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sluice.stac.logs import LogTree
from sluice.stac.reports import build_report, write_report

SLUICE_ONLY = {"not_found_aois.txt", "outcomes.json", "summary.json"}
BATCH = "compare"


def structured(message: str, level: str = "INFO") -> str:
    """A JSON log line as the real coordinator writes them."""
    return json.dumps({"timestamp": "2025-01-01T00:00:00Z", "level": level, "message": message})


# AOI -> {(job, file name): log text}; an AOI with no entry has no logs at all
OUTCOMES: dict[str, dict[tuple[str, str], str]] = {
    "ok-success": {("pipeline", "coordinator.stderr.0"): structured("Pipeline SUCCESS: 2/2")},
    "ok-early-exit": {("pipeline", "coordinator.stderr.0"): "Pipeline exiting early: none\n"},
    "fail-pipeline": {("pipeline", "coordinator.stderr.0"): structured("Pipeline FAILED: x")},
    "fail-oom": {("pipeline", "coordinator.stderr.0"): "job hand_inundator OOM Killed\n"},
    "fail-http": {
        ("pipeline", "coordinator.stderr.0"): "HTTPConnectionPool(host='n', port=4646)\n"
        "Pipeline SUCCESS: 1/1\n"
    },
    "fail-nomad-api": {("pipeline", "coordinator.stderr.0"): "BaseNomadException: 500\n"},
    "fail-job-lost": {("pipeline", "coordinator.stderr.0"): "status JobStatus.LOST\n"},
    "fail-job-stopped": {("pipeline", "coordinator.stderr.0"): "JobStatus.STOPPED\n"},
    "fail-s3": {
        ("pipeline", "coordinator.stderr.0"): "botocore.exceptions.ClientError: (403)\n"
        + structured("Pipeline SUCCESS: 1/1")
    },
    "fail-agreement": {
        ("pipeline", "coordinator.stderr.0"): "Pipeline SUCCESS: 1/1\n",
        ("agreement_maker", "processor.stderr.0"): "ERROR: rasterio could not open\n",
    },
    "fail-mosaic-warning": {
        ("pipeline", "coordinator.stderr.0"): "Pipeline SUCCESS: 1/1\n",
        ("fim_mosaicker", "processor.stderr.0"): "WARNING: clip failed\n",
    },
    "ok-agreement-harmless": {
        ("pipeline", "coordinator.stderr.0"): "Pipeline SUCCESS: 1/1\n",
        ("agreement_maker", "processor.stderr.0"): "NotGeoreferencedWarning: x\n"
        "distributed.shuffle warning\n",
    },
    "ok-ignorable": {
        ("pipeline", "coordinator.stderr.0"): "Pipeline SUCCESS: 1/1\n",
        ("agreement_maker", "processor.stderr.0"): "ERROR Agreement map contains no valid data\n",
    },
    "ok-ignorable-beats-failed": {
        ("pipeline", "coordinator.stderr.0"): "Pipeline FAILED: scenario\n",
        ("agreement_maker", "processor.stderr.0"): "Agreement map contains no valid data\n",
    },
    "fail-ignorable-and-error": {
        ("pipeline", "coordinator.stderr.0"): "Pipeline SUCCESS: 1/1\n",
        ("agreement_maker", "processor.stderr.0"): "Agreement map contains no valid data\n",
        ("fim_mosaicker", "processor.stderr.0"): "Error: no rasters\n",
    },
    "fail-inundate": {
        ("pipeline", "coordinator.stderr.0"): "Pipeline SUCCESS: 1/1\n",
        ("hand_inundator", "processor.stderr.0"): "ValueError: error reading catchment\n",
    },
    "ok-inundate-harmless": {
        ("pipeline", "coordinator.stderr.0"): "Pipeline SUCCESS: 1/1\n",
        ("hand_inundator", "processor.stderr.0"): "ERROR: No matching forecast data\n",
    },
    "silent-crash": {("pipeline", "coordinator.stderr.0"): "Traceback (most recent call last)\n"},
    "silent-never-ran": {},
    "unknown-id": {},
    "ok-rotated-and-stdout-ignored": {
        ("pipeline", "coordinator.stderr.0"): "starting\n",
        ("pipeline", "coordinator.stderr.1"): "pipeline success: 1/1\n",
        ("pipeline", "coordinator.stdout.0"): "Pipeline FAILED: not read\n",
    },
    "fail-bad-json-zoom": {
        ("pipeline", "coordinator.stderr.0"): "Pipeline SUCCESS: 1/1\n{not json, zoom}\n"
    },
    "ok-json-without-message": {
        ("pipeline", "coordinator.stderr.0"): '{"level": "ERROR", "detail": {"oom": 1}}\n'
        "Pipeline SUCCESS: 1/1\n"
    },
}
NOT_IN_RUN_LIST = "extra-not-in-run-list"  # its logs make the seed write missing_aois.txt


def write_outcomes(log_dir: Path) -> Path:
    """Write ``OUTCOMES`` as a log tree; the run list (every AOI but one) beside it."""
    tree = LogTree(log_dir, BATCH)
    logs = {**OUTCOMES, NOT_IN_RUN_LIST: {("pipeline", "coordinator.stderr.0"): "Pipeline SUCCESS"}}
    for aoi, files in logs.items():
        for (job, file), text in files.items():
            path = tree.path(job, aoi, {}, f"{aoi}-1").with_name(file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    run_list = log_dir.parent / "run-list.txt"
    run_list.write_text("".join(f"{aoi}\n" for aoi in OUTCOMES))
    return run_list


def sluice_report(run_list: Path, log_dir: Path, report_dir: Path) -> None:
    ids = [line.strip() for line in run_list.read_text().splitlines() if line.strip()]
    write_report(build_report(ids, LogTree(log_dir, "").messages()), report_dir)


def seed_report(script: Path, run_list: Path, log_dir: Path, report_dir: Path) -> None:
    command = [sys.executable, str(script), "--run_list", str(run_list)]
    command += ["--log_dir", str(log_dir), "--report_dir", str(report_dir)]
    subprocess.run(command, check=True, capture_output=True, text=True)


def differences(seed: Path, sluice: Path) -> list[str]:
    """Every difference between two report directories (Sluice's additions aside)."""
    found = []
    seed_files = {p.name for p in seed.iterdir()}
    sluice_files = {p.name for p in sluice.iterdir()} - SLUICE_ONLY
    for name in sorted(seed_files ^ sluice_files):
        who = "the seed" if name in seed_files else "Sluice"
        found.append(f"{name}: written only by {who}")
    for name in sorted(seed_files & sluice_files):
        if name.endswith(".json"):
            ours = json.loads((sluice / name).read_text())
            theirs = json.loads((seed / name).read_text())
            rows = {json.dumps(r, sort_keys=True) for r in ours}
            seed_rows = {json.dumps(r, sort_keys=True) for r in theirs}
            found += [f"{name}: only the seed has row {r}" for r in sorted(seed_rows - rows)]
            found += [f"{name}: only Sluice has row {r}" for r in sorted(rows - seed_rows)]
            if len(ours) != len(theirs):
                found.append(f"{name}: {len(theirs)} rows (seed) vs {len(ours)} (Sluice)")
        elif (seed / name).read_text() != (sluice / name).read_text():
            theirs = (seed / name).read_text().splitlines()
            ours = (sluice / name).read_text().splitlines()
            found += [f"{name}: only the seed lists {x}" for x in theirs if x not in ours]
            found += [f"{name}: only Sluice lists {x}" for x in ours if x not in theirs]
            if sorted(theirs) == sorted(ours):
                found.append(f"{name}: same lines in another order")
    return found


def compare(script: Path, run_list: Path | None, log_dir: Path | None, work: Path) -> list[str]:
    """Run both reports on the same inputs (``OUTCOMES`` when no log dir); differences."""
    if log_dir is None:
        log_dir = work / "logs" / BATCH
        run_list = write_outcomes(log_dir)
    assert run_list is not None
    seed_report(script, run_list, log_dir, work / "seed-report")
    sluice_report(run_list, log_dir, work / "sluice-report")
    return differences(work / "seed-report", work / "sluice-report")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("local_reports", type=Path, help="the seed's tools/local_reports.py")
    parser.add_argument("--run_list", type=Path, help="run list (with --log_dir)")
    parser.add_argument("--log_dir", type=Path, help="a log tree (default: every outcome)")
    args = parser.parse_args()
    if (args.run_list is None) != (args.log_dir is None):
        parser.error("--run_list and --log_dir go together")
    with tempfile.TemporaryDirectory() as work:
        found = compare(args.local_reports, args.run_list, args.log_dir, Path(work))
    for line in found:
        print(line)
    print(f"{len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
