#!/usr/bin/env bash
# Type-check the package `sluice` and benchmarks/ with mypy ([tool.mypy] in pyproject.toml).
# flows/, tasks/, blocks/ (and the examples) are sluice.* only when installed, so mypy reads
# the installed layout as links (scripts/installed_layout.py), kept in .mypy_cache so reruns
# are incremental; errors are printed with the repository's own paths.
#
#   bash scripts/mypy.sh                # extra arguments go to mypy
set -euo pipefail
cd "$(dirname "$0")/.."
tree=.mypy_cache/layout
.venv/bin/python scripts/installed_layout.py "$tree" benchmarks tests
dirs="$(.venv/bin/python -c 'import tomllib; print("|".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["setuptools"]["package-dir"].values()))')"
MYPYPATH="$tree" .venv/bin/python -m mypy -p sluice -p benchmarks "$@" \
  | sed -E -e "s#^$tree/sluice/($dirs)/#\1/#" -e "s#^$tree/##"
