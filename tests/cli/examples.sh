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
  # The points the file describes, counted apart from moesim: the axes'
  # product (or their common length when zipped) plus the explicit points.
  # The summary must hold exactly those rows, numbered 0..n-1, each with a
  # report of its own.
  python3 - "$f" "$tmp/$name" "$name" <<'PY' || fail=1
import csv, json, math, os, sys
spec, out, name = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
axes = list(spec.get("axes", {}).values())
if not axes:
    expected = 0
elif spec.get("mode", "product") == "zip":
    expected = len(axes[0])
else:
    expected = math.prod(len(values) for values in axes)
expected += len(spec.get("points", []))
rows = list(csv.DictReader(open(os.path.join(out, "summary.csv"))))
assert expected > 0 and len(rows) == expected, (name, len(rows), expected)
assert [int(r["point"]) for r in rows] == list(range(expected)), name
for r in rows:
    assert os.path.isfile(os.path.join(out, r["report"])), (name, r["report"])
print(f"{name}: sweep, {expected} points")
PY
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
