#!/usr/bin/env bash
# Leave a `sluice` the next command line finds (the docs write bare `sluice ...`):
# link .venv/bin/sluice into ~/.local/bin when that directory is on PATH, else print
# the one line that puts it there. A `sluice` in ~/.local/bin that is not a link is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$PWD/.venv/bin/sluice"
bin="$HOME/.local/bin"
if found="$(command -v sluice 2>/dev/null)" && [[ "$(realpath "$found")" == "$(realpath "$target")" ]]; then
  echo "sluice: on your PATH ($found)"
elif [[ ":$PATH:" == *":$bin:"* ]]; then
  if [[ -e "$bin/sluice" && ! -L "$bin/sluice" ]]; then
    echo "sluice: $bin/sluice exists and is not a link; left alone. Run: source .venv/bin/activate"
  else
    mkdir -p "$bin"
    ln -sfn "$target" "$bin/sluice"
    echo "sluice: linked $bin/sluice -> $target"
  fi
else
  echo "sluice: installed in .venv/bin, which is not on your PATH. Run:"
  echo "  source $PWD/.venv/bin/activate"
fi
