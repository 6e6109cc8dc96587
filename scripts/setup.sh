#!/usr/bin/env bash
# Create .venv with Sluice and its pinned dependencies, and leave `sluice` on PATH
# (scripts/link_sluice.sh: a link in ~/.local/bin, or the line to run).
#   --with-test-services   also install what the tests start (PostgreSQL, Redis, Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--with-test-services" ]]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    postgresql redis-server chromium chromium-driver >/dev/null
fi
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test,bench]'
bash scripts/link_sluice.sh
