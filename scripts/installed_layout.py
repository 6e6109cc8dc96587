"""Lay the sources out as the wheel installs them, as links: TREE/sluice/* -> sluice/*, and
every [tool.setuptools.package-dir] entry (flows/ -> TREE/sluice/flows, ...). Tools that read
a package from one directory (mypy, import-linter) cannot follow the editable import hook.

    python scripts/installed_layout.py TREE [EXTRA_DIR ...]   # EXTRA_DIRs are linked at TREE/
"""

import shutil
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lay_out(tree: Path, extra: list[str]) -> None:
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "sluice").mkdir(parents=True)
    for entry in (REPO / "sluice").iterdir():
        (tree / "sluice" / entry.name).symlink_to(entry)
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, directory in setuptools["package-dir"].items():
        (tree / package.replace(".", "/")).symlink_to(REPO / directory)
    for directory in extra:
        (tree / directory).symlink_to(REPO / directory)


if __name__ == "__main__":
    lay_out(Path(sys.argv[1]), sys.argv[2:])
