"""A Python-callable stage for the tests (imported by path from a stage catalogue)."""

from pathlib import Path


def record(run_dir: Path, runid: str, stage: str) -> None:
    """Write ``<stage>.callable`` naming the run, in the run directory."""
    (run_dir / f"{stage}.callable").write_text(runid)
