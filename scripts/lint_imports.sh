#!/usr/bin/env bash
# The import contracts ([tool.importlinter] in pyproject.toml) over the installed layout.
# flows/, tasks/ and blocks/ become sluice.flows, sluice.tasks and sluice.blocks only when
# installed ([tool.setuptools.package-dir]), and import-linter reads a package from one
# directory: scripts/installed_layout.py links the sources into that layout first.
#
#   bash scripts/lint_imports.sh          # extra arguments go to lint-imports (e.g. --verbose)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="$repo/.venv/bin"  # the project's venv (scripts/setup.sh), else whatever is on PATH
[[ -x "$bin/lint-imports" ]] || bin="$(dirname "$(command -v lint-imports)")"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
"$bin/python" "$repo/scripts/installed_layout.py" "$tree"
cd "$tree"
PYTHONPATH="$tree" "$bin/lint-imports" --config "$repo/pyproject.toml" --no-cache "$@"
