#!/usr/bin/env bash
# Set up Sluice and run the tiered sweep demo on the embedded default:
# a local Prefect server (started on first use) and local processes under real
# memory limits. 60 indexes, 64 MiB tier 0, doubling: expect OOM kills at tiers
# 0-2 and every index succeeding by tier 3.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
exec .venv/bin/sluice sweep \
  --template-path examples/sweep/job.yaml \
  --namespace demo --job-name-prefix demo \
  --count 60 --chunk-size 20 \
  --tier 0 --schedule-start-gi 0.0625 --max-tier 3 \
  --parallelism 2 --quiet \
  --report-dir reports/demo "$@"
