#!/usr/bin/env bash
# One file of examples/ runs as the README says: a scenario with `moesim run`
# (status ok, a report written), a sweep with `moesim sweep` (a summary with
# one row per point). CMake registers one test per example, so the examples
# run side by side and each has the whole per-test time limit.
set -u
moesim=$1
f=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
name=$(basename "$f" .json)
[ -f "$f" ] || { echo "FAIL: no example $f"; exit 1; }
if grep -q '"base"' "$f"; then
  if ! "$moesim" sweep "$f" -o "$tmp/$name" >"$tmp/out" 2>"$tmp/err"; then
    echo "FAIL: sweep $name"; cat "$tmp/err"; exit 1
  fi
  rows=$(($(wc -l <"$tmp/$name/summary.csv") - 1))
  [ "$rows" -gt 0 ] || { echo "FAIL: sweep $name: empty summary"; fail=1; }
  echo "$name: sweep, $rows points"
else
  if ! "$moesim" run "$f" -o "$tmp/$name.report.json" >"$tmp/out" 2>"$tmp/err"; then
    echo "FAIL: run $name"; cat "$tmp/err"; exit 1
  fi
  python3 - "$tmp/$name.report.json" "$name" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "ok", (sys.argv[2], r["status"])
if r["report_kind"] == "inference":
    # Every request finished; each phase's parts add up to its iterations' time.
    assert r["requests"]["completed"] == r["requests"]["count"] > 0, sys.argv[2]
    for phase in ("prefill", "decode"):
        p = r["breakdown"][phase]
        if p["iterations"]:
            parts = sum(p["per_iteration"].values())
            assert abs(parts - p["mean_iteration_s"]) < 1e-6 * p["mean_iteration_s"], (sys.argv[2], phase)
    assert r["kv_cache"]["blocks_allocated"] == r["kv_cache"]["blocks_freed"], sys.argv[2]
    print(f"{sys.argv[2]}: {r['throughput']['output_tokens_per_s_per_gpu']:.1f} output tokens/s per GPU")
else:
    assert r["report_kind"] == "training", sys.argv[2]
    assert r["step_time_s"] > 0 and abs(sum(r["breakdown"].values()) - r["step_time_s"]) < 1e-6 * r["step_time_s"] + 1e-9, sys.argv[2]
    print(f"{sys.argv[2]}: {r['step_time_s']:.3f} s")
PY
fi
exit $fail
