#!/usr/bin/env bash
# The image's install steps, in one place: the Dockerfile runs this in its build stage, and
# CI runs it in a fresh venv (scripts/wheel_smoke.sh), so what the image holds is tested.
#
#   bash scripts/image_install.sh WHEEL PREFIX
#
# Creates the venv PREFIX with the interpreter `python3` (PYTHON overrides), installs the
# wheel and its pinned dependencies from binary wheels only (no compiler is ever needed or
# left), and checks the result: no pip/setuptools/wheel in the venv, every flow importable,
# the `sluice` and `prefect` commands run, package data present.
set -euo pipefail
wheel="${1:?usage: image_install.sh WHEEL PREFIX}"
prefix="${2:?usage: image_install.sh WHEEL PREFIX}"
uv venv --quiet --python "${PYTHON:-python3}" "$prefix"
uv pip install --quiet --no-cache --only-binary :all: --python "$prefix/bin/python" "$wheel"

for tool in pip setuptools wheel; do
  if "$prefix/bin/python" -I -c "import $tool" 2>/dev/null; then
    echo "image_install: $tool is installed in $prefix (build tools must not ship)" >&2
    exit 1
  fi
done
"$prefix/bin/python" -I - <<'PY'
import importlib
for name in ("sweep", "stac_batch", "watersheds", "chunkedgraph", "karabo"):
    importlib.import_module(f"sluice.flows.{name}")
from sluice.resources import shipped
for part in (("sluice.infra", "nomad", "pipeline.nomad.json"),
             ("sluice.infra", "kubernetes", "karabo", "job-template.yaml"),
             ("sluice.examples", "karabo", "standin_simulation.py")):
    assert shipped(*part).is_file(), part
PY
"$prefix/bin/sluice" --help >/dev/null
"$prefix/bin/prefect" --version >/dev/null
echo "image_install: sluice installed in $prefix"
