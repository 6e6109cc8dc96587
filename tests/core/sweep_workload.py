"""Job templates for sweep tests: a workload whose memory need and failures depend on INDEX.

Environment of the job:
  NEEDS       "7:96,9:200" -> MiB each index holds (default 8)
  FAIL        "4,5"        -> indexes that exit 3
  DONE_LOG    file each successful index appends its number to
  BLOCK_INDEX index that writes its pid to MARKER, then waits for RELEASE to exist
"""

from __future__ import annotations

from pathlib import Path

import yaml

WORKLOAD = """
import os, sys, time
i = int(os.environ["INDEX"])
needs = dict(p.split(":") for p in os.environ.get("NEEDS", "").split(",") if p)
need = int(needs.get(str(i), 8))
block = bytearray(need * 2**20)
for offset in range(0, len(block), 4096):
    block[offset] = 1
if str(i) in os.environ.get("FAIL", "").split(","):
    sys.exit(3)
if os.environ.get("BLOCK_INDEX") == str(i):
    with open(os.environ["MARKER"], "w") as marker:
        marker.write(str(os.getpid()))
    while not os.path.exists(os.environ["RELEASE"]):
        time.sleep(0.05)
with open(os.environ["DONE_LOG"], "a") as log:
    log.write(f"{i}\\n")
"""


def write_template(path: Path, **env: str) -> Path:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "test-sweep"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "work",
                            "image": "python:3.11-slim",
                            "command": ["python3", "-c", WORKLOAD],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                        }
                    ],
                }
            }
        },
    }
    path.write_text(yaml.safe_dump(job))
    return path
