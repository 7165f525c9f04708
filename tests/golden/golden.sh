#!/usr/bin/env bash
# Golden reports: regenerates each file of tests/golden/ and compares it byte
# for byte with the committed one. A difference means the model's output
# changed: if on purpose, run scripts/update-golden.sh and say why in the
# commit message. Usage: golden.sh MOESIM SOURCE_DIR
set -u
moesim=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check NAME GENERATED
  if cmp -s "$src/tests/golden/$1" "$2"; then
    echo "same: $1"
  else
    echo "FAIL: $1 differs from the golden file (first differences below)"
    diff "$src/tests/golden/$1" "$2" | head -20
    fail=1
  fi
}
"$moesim" run "$src/examples/mixtral-8x7b-h100-16gpu.json" -o "$tmp/a.json" >/dev/null || fail=1
check mixtral-8x7b-h100-16gpu.report.json "$tmp/a.json"
"$moesim" run "$src/examples/qwen3-235b-h100-256gpu-deepep.json" -o "$tmp/b.json" >/dev/null || fail=1
check qwen3-235b-h100-256gpu-deepep.report.json "$tmp/b.json"
"$moesim" sweep "$src/examples/mixtral-8x7b-sweep.json" -o "$tmp/sweep" >/dev/null 2>&1 || fail=1
check mixtral-8x7b-sweep.summary.csv "$tmp/sweep/summary.csv"
"$moesim" run "$src/examples/mixtral-8x7b-h100-tp2-poisson.json" -o "$tmp/c.json" >/dev/null || fail=1
check mixtral-8x7b-h100-tp2-poisson.report.json "$tmp/c.json"
"$moesim" sweep "$src/examples/mixtral-8x7b-h100-rate-sweep.json" -o "$tmp/rate" >/dev/null 2>&1 || fail=1
check mixtral-8x7b-h100-rate-sweep.summary.csv "$tmp/rate/summary.csv"
exit $fail
