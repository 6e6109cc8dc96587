#!/usr/bin/env bash
# The import contracts ([tool.importlinter] in pyproject.toml) over the installed layout.
# flows/, tasks/ and blocks/ become sluice.flows, sluice.tasks and sluice.blocks only when
# installed ([tool.setuptools.package-dir]), and import-linter reads a package from one
# directory: the sources are linked into that layout in a temporary directory first.
#
#   bash scripts/lint_imports.sh          # extra arguments go to lint-imports (e.g. --verbose)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="$repo/.venv/bin"  # the project's venv (scripts/setup.sh), else whatever is on PATH
[[ -x "$bin/lint-imports" ]] || bin="$(dirname "$(command -v lint-imports)")"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
"$bin/python" - "$repo" "$tree" <<'PY'
import sys, tomllib
from pathlib import Path

repo, tree = Path(sys.argv[1]), Path(sys.argv[2])
(tree / "sluice").mkdir()
for entry in (repo / "sluice").iterdir():
    (tree / "sluice" / entry.name).symlink_to(entry)
mapped = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
for package, directory in mapped.items():
    (tree / package.replace(".", "/")).symlink_to(repo / directory)
PY
cd "$tree"
PYTHONPATH="$tree" "$bin/lint-imports" --config "$repo/pyproject.toml" --no-cache "$@"
