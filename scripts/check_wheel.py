"""Check a built wheel against the tree: every module of sluice/, flows/, tasks/ and blocks/
is in it under ``sluice/`` (pyproject lists the packages explicitly, so a new sub-package
that is not listed would silently be left out), with the package data, and nothing is
installed at the top level except ``sluice``.

    python scripts/check_wheel.py REPO WHEEL
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

MAPPED = {"sluice": "sluice", "flows": "sluice/flows", "tasks": "sluice/tasks"}
MAPPED |= {"blocks": "sluice/blocks", "infra": "sluice/infra", "examples": "sluice/examples"}


def expected(repo: Path) -> set[str]:
    """Wheel paths the tree says must be there (Python files and shipped data)."""
    want = set()
    for folder, target in MAPPED.items():
        for path in (repo / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                if folder in ("sluice", "flows", "tasks", "blocks") and path.suffix != ".py":
                    continue
                want.add(f"{target}/{path.relative_to(repo / folder).as_posix()}")
    return want


def main(repo: str, wheel: str) -> int:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(expected(Path(repo)) - names)
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    for path in missing:
        print(f"missing from the wheel: {path}", file=sys.stderr)
    if top != {"sluice"}:
        print(f"top-level names in the wheel: {sorted(top)}, not only sluice", file=sys.stderr)
    return 1 if missing or top != {"sluice"} else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
