"""Test stand-in for Karabo's workflow module: runs Sluice's documented stand-in simulation."""

import runpy
from pathlib import Path

runpy.run_path(
    str(Path(__file__).resolve().parents[5] / "examples" / "karabo" / "standin_simulation.py"),
    run_name="__main__",
)
