#!/usr/bin/env bash
# Type-check the package `sluice` (and benchmarks/) with mypy, configured in pyproject.toml.
# The repository's flows/, tasks/ and blocks/ install as sluice.flows, sluice.tasks and
# sluice.blocks (package-dir); mypy cannot follow setuptools' editable import hook, so it reads
# a tree of links laid out as the wheel is (kept in .mypy_cache, so reruns are incremental) and
# the errors are printed with the repository's own paths.
#
#   bash scripts/mypy.sh                # extra arguments go to mypy
set -euo pipefail
cd "$(dirname "$0")/.."
tree=.mypy_cache/tree
rm -rf "$tree"
mkdir -p "$tree/sluice"
ln -s "$PWD"/sluice/* "$tree/sluice/"
for code in flows tasks blocks; do ln -s "$PWD/$code" "$tree/sluice/$code"; done
ln -s "$PWD/benchmarks" "$PWD/tests" "$tree/"
MYPYPATH="$tree" .venv/bin/python -m mypy -p sluice -p benchmarks "$@" \
  | sed -e "s#^$tree/sluice/\(flows\|tasks\|blocks\)/#\1/#" -e "s#^$tree/##"
