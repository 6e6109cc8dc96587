#!/usr/bin/env bash
# Wheel-only smoke: build the wheel, install it into a fresh venv (uv), and from a temporary
# directory (no checkout on the path) run `sluice --help` and a small run of every flow on the
# local backend. Inputs come from the installed package data (sluice.examples), never from the
# repository. The STAC smoke also needs `rustac` (the test extra) to serve the STAC API: it is
# taken from the repository's .venv, or skipped with a message when that is missing.
#
#   bash scripts/wheel_smoke.sh            # keeps nothing; SMOKE_KEEP=1 keeps the temp dir
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  if [[ -x "$tmp/venv/bin/sluice" ]]; then
    (cd "$tmp/work" && SLUICE_HOME="$tmp/home" "$tmp/venv/bin/sluice" server stop) >/dev/null 2>&1 || true
  fi
  [[ "${SMOKE_KEEP:-}" == 1 ]] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "build the wheel"
uv build --quiet --wheel --out-dir "$tmp/dist" "$repo"
wheel="$(ls "$tmp"/dist/sluice-*.whl)"
python3 "$repo/scripts/check_wheel.py" "$repo" "$wheel"

step "install it into a fresh venv with the image's install script"
bash "$repo/scripts/image_install.sh" "$wheel" "$tmp/venv"
bin="$tmp/venv/bin"

mkdir -p "$tmp/work" "$tmp/home"
cd "$tmp/work"
export SLUICE_HOME="$tmp/home" SLUICE_SERVER_PORT="$(free_port)"
unset PREFECT_API_URL PYTHONPATH

step "imports and CLI from $PWD"
"$bin/python" -c 'import sluice.flows.sweep, sluice.tasks.karabo, sluice.blocks'
if "$bin/python" -c 'import flows' 2>/dev/null; then
  echo "a top-level 'flows' package is installed" >&2
  exit 1
fi
"$bin/sluice" --help >/dev/null
ex="$("$bin/python" -c 'from sluice.resources import shipped; print(shipped("sluice.examples"))')"
"$bin/sluice" server start

step "sweep: 3 indexes of examples/sweep/job.yaml"
"$bin/sluice" sweep --template-path "$ex/sweep/job.yaml" --namespace smoke \
  --job-name-prefix smoke --count 3 --chunk-size 3 --tier 0 --schedule-start-gi 0.5 \
  --max-tier 0 --parallelism 2 --quiet --report-dir reports/sweep
test "$(wc -l <reports/sweep/items.jsonl)" -eq 3

step "watersheds: the example batch"
template="{slug(properties['HucName'])}-{zfill(one_based_index, 3)}"
"$bin/sluice" watersheds validate --geojson "$ex/watersheds/simple.geojson" --template "$template"
"$bin/sluice" watersheds create smoke --base "$ex/watersheds/base" \
  --stages "$ex/watersheds/stages.yaml" --geojson "$ex/watersheds/simple.geojson" \
  --template "$template"
"$bin/sluice" watersheds run smoke
"$bin/sluice" watersheds status smoke

step "chunkedgraph: --noop on the example dataset"
"$bin/sluice" chunkedgraph ingest smoke "$ex/chunkedgraph/dataset.yml" --noop
"$bin/sluice" chunkedgraph status smoke | tee cg-status.txt
grep -qx $'2\t: 64 / 64' cg-status.txt

step "karabo: stand-in simulation and stand-in ingestor"
"$bin/sluice" karabo run --imaging-npixel 64 --num-time-stamps 4 --product dirty

step "stac-batch: stage mode against rustac serve"
rustac="$repo/.venv/bin/rustac"
if [[ -x "$rustac" ]]; then
  "$bin/python" "$ex/stac/make_fixture.py" "$tmp/stac"
  stac_port="$(free_port)"
  "$rustac" serve --addr "127.0.0.1:$stac_port" "$tmp"/stac/*-collection.json \
    "$tmp/stac/items.json" >"$tmp/rustac.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$stac_port/" >/dev/null && break
    sleep 0.2
  done
  "$bin/sluice" stac-batch --batch_name smoke --output_root "$tmp/stac/out" \
    --hand_index_path "$tmp/stac/hand_index" --stac_api_url "http://127.0.0.1:$stac_port" \
    --benchmark_sources nws-fim-collection,usgs-fim-collection \
    --item_list "$tmp/stac/item-list.txt" --wait_seconds 0.1 --mode stage || true
  # The fixture has one item that fails until its flowfile exists, so the batch ends
  # incomplete (exit 1); what must hold is that it ran to its report.
  test -s "$SLUICE_HOME/stac/smoke/report/success_aois.txt"
else
  echo "skipped: no $rustac (install the test extra) to serve the STAC API"
fi

step "wheel smoke passed"
