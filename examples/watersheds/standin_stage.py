"""A stand-in for one wepppy stage (NOT wepppy): proves the run directory is set up, writes output.

Run with the run directory as working directory: ``standin_stage.py STAGE RUNID``.
Exits 3 if a ``*.nodb`` file's ``py/state.wd`` is not this directory (the copy
from ``_base`` was not rewritten); exits 4 if RUNID is listed in the
``STANDIN_FAIL_RUNIDS`` environment variable (comma-separated), to show a
failing watershed; otherwise writes ``outputs/<stage>.json``.
"""

import json
import os
import sys
from pathlib import Path

stage, runid = sys.argv[1], sys.argv[2]
here = Path.cwd()
for nodb in here.glob("*.nodb"):
    wd = json.loads(nodb.read_text())["py/state"]["wd"]
    if Path(wd).resolve() != here.resolve():
        print(f"{nodb.name}: wd {wd} is not the run directory {here}", file=sys.stderr)
        sys.exit(3)
if runid in os.environ.get("STANDIN_FAIL_RUNIDS", "").split(","):
    print(f"{stage}: failing {runid} on purpose (STANDIN_FAIL_RUNIDS)", file=sys.stderr)
    sys.exit(4)
outputs = here / "outputs"
outputs.mkdir(exist_ok=True)
(outputs / f"{stage}.json").write_text(json.dumps({"runid": runid, "stage": stage}))
print(f"{stage} done for {runid}")
