"""Set-up leaves a `sluice` the next command line finds, or says the one line to run."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/bin:/bin"


def _link(home: Path, path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "link_sluice.sh")],
        env={"HOME": str(home), "PATH": path},
        capture_output=True,
        text=True,
        check=True,
    )


def test_linked_into_local_bin_when_it_is_on_path_and_then_runs_bare(tmp_path):
    local_bin = tmp_path / ".local" / "bin"
    path = f"{local_bin}:{SYSTEM_PATH}"
    said = _link(tmp_path, path)
    assert (local_bin / "sluice").resolve() == (REPO / ".venv" / "bin" / "sluice").resolve()
    assert said.stdout == f"sluice: linked {local_bin}/sluice -> {REPO}/.venv/bin/sluice\n"
    bare = subprocess.run(
        ["sluice", "runs", "--help"],
        env={"HOME": str(tmp_path), "PATH": path},
        capture_output=True,
        text=True,
    )
    assert bare.returncode == 0, bare.stderr
    assert "Usage: sluice runs" in bare.stdout
    assert _link(tmp_path, path).stdout == f"sluice: on your PATH ({local_bin}/sluice)\n"


def test_without_local_bin_on_path_it_prints_the_line_to_run(tmp_path):
    said = _link(tmp_path, SYSTEM_PATH)
    assert f"source {REPO}/.venv/bin/activate" in said.stdout
    assert not (tmp_path / ".local").exists()


def test_a_sluice_in_local_bin_that_is_not_a_link_is_left_alone(tmp_path):
    local_bin = tmp_path / ".local" / "bin"
    local_bin.mkdir(parents=True)
    (local_bin / "sluice").write_text("#!/bin/sh\necho mine\n")
    said = _link(tmp_path, f"{local_bin}:{SYSTEM_PATH}")
    assert "left alone" in said.stdout
    assert (local_bin / "sluice").read_text() == "#!/bin/sh\necho mine\n"
