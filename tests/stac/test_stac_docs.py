"""docs/stac.md's demo runs as written (on a free port, in a temporary directory)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "stac.md"


def demo_block() -> str:
    text = DOC.read_text()
    section = text[text.index("## Trying it without a cluster") :]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_the_demo_runs_as_written(prefect_api, sluice_home, tmp_path):
    script = demo_block().replace("127.0.0.1:7822", f"127.0.0.1:{free_port()}")
    script = script.replace("/tmp/stac-demo", str(tmp_path / "demo"))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "SLUICE_HOME": str(sluice_home),
    }
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=DOC.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "exit 1: ahps-fail-nws failed" in result.stdout
    report2 = tmp_path / "demo" / "report2"
    assert (report2 / "unique_fail_aoi_names.txt").read_text() == ""
    assert len((report2 / "unique_success_aoi_names.txt").read_text().split()) == 6
    rebuilt = tmp_path / "demo" / "report3" / "unique_success_aoi_names.txt"
    assert rebuilt.read_text() == (report2 / "unique_success_aoi_names.txt").read_text()
