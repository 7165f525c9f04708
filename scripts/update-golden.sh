#!/usr/bin/env bash
# Rewrites the golden reports in tests/golden/ from the current build:
#   mixtral-8x7b-h100-16gpu.report.json   moesim run (the embedded default)
#   qwen3-235b-h100-256gpu-deepep.report.json   moesim run, 256 GPUs
#   mixtral-8x7b-sweep.summary.csv   moesim sweep
#   mixtral-8x7b-h100-tp2-poisson.report.json   moesim run, serving (inference)
#   mixtral-8x7b-h100-rate-sweep.summary.csv   moesim sweep over request rates
# tests/golden/golden.sh compares a fresh run against them byte for byte. A
# commit that changes a golden file must say why in its message.
# Usage: scripts/update-golden.sh [path/to/moesim]   (default: build/moesim)
set -euo pipefail
cd "$(dirname "$0")/.."
moesim=${1:-build/moesim}
golden=tests/golden
"$moesim" run examples/mixtral-8x7b-h100-16gpu.json -o "$golden/mixtral-8x7b-h100-16gpu.report.json" >/dev/null
"$moesim" run examples/qwen3-235b-h100-256gpu-deepep.json -o "$golden/qwen3-235b-h100-256gpu-deepep.report.json" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$moesim" sweep examples/mixtral-8x7b-sweep.json -o "$tmp/sweep" >/dev/null 2>&1
cp "$tmp/sweep/summary.csv" "$golden/mixtral-8x7b-sweep.summary.csv"
"$moesim" run examples/mixtral-8x7b-h100-tp2-poisson.json -o "$golden/mixtral-8x7b-h100-tp2-poisson.report.json" >/dev/null
"$moesim" sweep examples/mixtral-8x7b-h100-rate-sweep.json -o "$tmp/rate" >/dev/null 2>&1
cp "$tmp/rate/summary.csv" "$golden/mixtral-8x7b-h100-rate-sweep.summary.csv"
echo "golden reports rewritten in $golden; say why in the commit message"
