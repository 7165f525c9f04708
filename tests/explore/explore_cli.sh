#!/usr/bin/env bash
# moesim sweep / search / plot end to end: a sweep equals separate runs,
# interrupted sweeps resume computing each point once, search ranks a
# known-better strategy first, plots are standalone SVG.
set -u
moesim=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
cat >"$tmp/base.json" <<'JSON'
{"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 1},
 "parallel": {"dp": 8, "ep": 8}, "workload": {"seq_len": 512, "global_batch": 32},
 "routing": {"generator": "zipf:1.0", "seed": 3}, "gating": {"capacity_factor": 1.25}}
JSON
cat >"$tmp/sweep.json" <<'JSON'
{"base": "base.json",
 "axes": {"gating.capacity_factor": [1.0, 1.5, "dropless"], "parallel.ep": [2, 4, 8],
          "routing.seed": [3, 4]}}
JSON
"$moesim" sweep "$tmp/sweep.json" -o "$tmp/r1" -j 2 >"$tmp/out" 2>/dev/null ||
  { echo "FAIL: sweep"; fail=1; }
rows=$(($(wc -l <"$tmp/r1/summary.csv") - 1))
[ "$rows" = 18 ] || { echo "FAIL: summary has $rows rows, expected 18"; fail=1; }
[ "$(wc -l <"$tmp/r1/summary.jsonl")" = 18 ] || { echo "FAIL: summary.jsonl rows"; fail=1; }
# Each point's report equals a separate `moesim run` of the same scenario.
python3 - "$tmp" "$moesim" <<'PY' || fail=1
import json, subprocess, sys
tmp, moesim = sys.argv[1], sys.argv[2]
base = json.load(open(f"{tmp}/base.json"))
rows = [json.loads(l) for l in open(f"{tmp}/r1/summary.jsonl")]
bad = 0
for r in rows[:12]:
    s = json.loads(json.dumps(base))
    s["gating"]["capacity_factor"] = r["gating.capacity_factor"]
    s["parallel"]["ep"] = r["parallel.ep"]
    s["routing"]["seed"] = r["routing.seed"]
    json.dump(s, open(f"{tmp}/point.json", "w"))
    out = subprocess.run([moesim, "run", f"{tmp}/point.json", "-o", f"{tmp}/point_report.json"],
                         capture_output=True)
    if out.returncode != 0:
        print("FAIL: separate run failed", out.stderr.decode()); bad = 1; continue
    if open(f"{tmp}/point_report.json").read() != open(f"{tmp}/r1/{r['report']}").read():
        print(f"FAIL: point {r['point']} differs from a separate run"); bad = 1
sys.exit(bad)
PY
# Identical sweep output regardless of threads.
"$moesim" sweep "$tmp/sweep.json" -o "$tmp/r2" -j 1 >/dev/null 2>&1
cmp -s "$tmp/r1/summary.csv" "$tmp/r2/summary.csv" || { echo "FAIL: -j 1 and -j 2 differ"; fail=1; }
# Resume: remove half the finished points (as if killed halfway); the rerun
# recomputes exactly those.
ls "$tmp/r2/points" | head -9 | while read f; do rm "$tmp/r2/points/$f"; done
rm "$tmp/r2/summary.csv"
"$moesim" sweep "$tmp/sweep.json" -o "$tmp/r2" -j 2 >"$tmp/out" 2>/dev/null
grep -q "9 reused" "$tmp/out" || { echo "FAIL: resume did not reuse 9 points:"; cat "$tmp/out"; fail=1; }
cmp -s "$tmp/r1/summary.csv" "$tmp/r2/summary.csv" || { echo "FAIL: resumed summary differs"; fail=1; }
# A real interruption: kill a sequential sweep mid-way, then finish it.
"$moesim" sweep "$tmp/sweep.json" -o "$tmp/r3" -j 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 50); do
  [ "$(ls "$tmp/r3/points" 2>/dev/null | grep -c '\.json$')" -ge 3 ] && break; sleep 0.05
done
kill $pid 2>/dev/null; wait $pid 2>/dev/null
for f in "$tmp"/r3/points/*.json; do
  python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$f" 2>/dev/null ||
    { echo "FAIL: half-written report $f"; fail=1; }
done
done_before=$(ls "$tmp/r3/points" | grep -c '\.json$')
"$moesim" sweep "$tmp/sweep.json" -o "$tmp/r3" -j 2 >"$tmp/out" 2>/dev/null
grep -q "$done_before reused" "$tmp/out" || { echo "FAIL: restart reused != $done_before"; cat "$tmp/out"; fail=1; }
ls "$tmp/r3/points" | grep -q '\.tmp' && { echo "FAIL: stale temporary files kept"; fail=1; }
cmp -s "$tmp/r1/summary.csv" "$tmp/r3/summary.csv" || { echo "FAIL: restarted summary differs"; fail=1; }
# Plots.
"$moesim" plot "$tmp/r1/summary.csv" --x capacity_factor --y step_time_s --series parallel.ep \
  -o "$tmp/plot.svg" >/dev/null || { echo "FAIL: plot"; fail=1; }
grep -q "<polyline" "$tmp/plot.svg" && grep -q "</svg>" "$tmp/plot.svg" || { echo "FAIL: plot SVG"; fail=1; }
"$moesim" plot "$tmp/r1/summary.csv" --breakdown -o "$tmp/b.svg" >/dev/null &&
  grep -q "<rect" "$tmp/b.svg" || { echo "FAIL: breakdown SVG"; fail=1; }
"$moesim" plot "$tmp/r1/summary.csv" --x nope --y step_time_s -o "$tmp/x.svg" 2>"$tmp/err"
[ $? = 2 ] && grep -q "no column 'nope'" "$tmp/err" || { echo "FAIL: bad column error"; fail=1; }
# Search: on 8 GPUs a 4-layer model is faster without pipeline bubbles.
"$moesim" search --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --seq 512 \
  --json -o "$tmp/search.json" >"$tmp/out" 2>/dev/null || { echo "FAIL: search"; fail=1; }
python3 - "$tmp/search.json" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
rank = {(e["dp"], e["pp"], e["ep"], e["micro_batch_size"], e["recompute"], e["zero_stage"]): e["rank"]
        for e in d["ranking"] if e["tp"] == 1}
better, worse = (8, 1, 8, 1, "none", 1), (2, 4, 2, 1, "none", 1)
if rank[better] >= rank[worse]:
    print("FAIL: dp8 ranked", rank[better], "vs pp4", rank[worse]); sys.exit(1)
if d["enumerated"] != d["simulated"] + sum(d["rejected"].values()):
    print("FAIL: search counts do not add up"); sys.exit(1)
PY
[ -s "$tmp/search.json.csv" ] || { echo "FAIL: search CSV"; fail=1; }
[ $fail = 0 ] && echo "explore cli: all checks passed"
exit $fail
