"""Side-by-side with the seed: wetlands' ``orchestrate_indices.py --dry-run print``.

The seed's code is not in this repository. ``fixtures/sweep_seed/expected.json`` holds
its OUTPUT on ``fixtures/sweep_seed/job.yaml`` (a template written for these tests) for
every case in ``CASES``, recorded by running the real script (boettiger-lab/datasets at
587ccf1d2dd94d4d9539db636f96c0daef53285d, the last commit that has it) with::

    git --git-dir=<mirror> show 587ccf1:wetlands/orchestrate_indices.py > /tmp/s/seed.py
    python -m tests.core.sweep_seed /tmp/s/seed.py

``test_sweep_seed.py`` compares Sluice's output with it; with ``SLUICE_SEED000_SCRIPT``
set to that path it also runs the seed live, on this template and on the seed's own
``job.yaml`` when it lies beside the script.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "sweep_seed"
TEMPLATE = FIXTURES / "job.yaml"
EXPECTED = FIXTURES / "expected.json"
SEED_COMMIT = "587ccf1d2dd94d4d9539db636f96c0daef53285d"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")

CASES: list[list[str]] = [
    ["--count", "3"],
    ["--indexes", "3", "1", "--chunk-size", "1", "--tier", "1"],
    ["--start", "7", "--count", "4", "--chunk-size", "3"],
    ["--count", "3", "--tier", "2", "--schedule-start-gi", "8", "--schedule-factor", "1.5"],
    ["--count", "2", "--tier", "3", "--schedule-start-gi", "0.5"],
    ["--count", "2", "--memory", "120Gi", "--cpu", "4", "--tier", "1", "--chunk-size", "1"],
    ["--count", "2", "--ttl", "-1", "--backoff-limit", "2", "--batch-label", "mine"],
    ["--count", "3", "--chunk-size", "0"],
    ["--count", "4", "--chunk-size", "2", "--batch-label-template", "c{chunk}-{end}-t{tier}"],
    ["--count", "2", "--job-name-prefix", "wl", "--namespace", "other"],
    ["--count", "2", "--cpu", "250m"],
    ["--limit", "0"],
    ["--count", "0"],
]


def documents(text: str) -> list[dict]:
    """The JSON objects in ``text``; the seed's own lines between them are skipped."""
    decoder, found, position = json.JSONDecoder(), [], 0
    while position < len(text):
        if text[position] == "{":
            document, position = decoder.raw_decode(text, position)
            found.append(document)
        else:
            end = text.find("\n", position)
            position = len(text) if end < 0 else end + 1
    return found


def normalized(manifest: dict) -> dict:
    """``manifest`` with its timestamp checked and blanked and Sluice's own ``sluice/*``
    labels (the backend's chunk label) removed: what must equal the seed's."""
    manifest = json.loads(json.dumps(manifest))
    annotations = manifest["metadata"]["annotations"]
    stamp = annotations["wetlands/orchestrator-timestamp"]
    assert TIMESTAMP.match(stamp), stamp
    annotations["wetlands/orchestrator-timestamp"] = "<timestamp>"
    for meta in (manifest["metadata"], manifest["spec"]["template"]["metadata"]):
        meta["labels"] = {k: v for k, v in meta["labels"].items() if not k.startswith("sluice/")}
    return manifest


def run_seed(script: Path, template: Path, args: list[str]) -> dict:
    """The seed's exit code and normalized manifests for ``args`` (print mode)."""
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--template-path",
            str(template),
            "--dry-run",
            "print",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "exit": done.returncode,
        "nothing_to_do": "nothing to do" in done.stdout,
        "manifests": [normalized(m) for m in documents(done.stdout)],
    }


def main(script: str) -> None:
    recorded = {
        "seed": f"boettiger-lab/datasets@{SEED_COMMIT}:wetlands/orchestrate_indices.py",
        "cases": [{"args": args, **run_seed(Path(script), TEMPLATE, args)} for args in CASES],
    }
    EXPECTED.write_text(json.dumps(recorded, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
