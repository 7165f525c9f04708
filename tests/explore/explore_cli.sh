#!/usr/bin/env bash
# moesim sweep / search / plot end to end: a sweep equals separate runs,
# interrupted sweeps resume computing each point once, search ranks a
# known-better strategy first, plots are standalone SVG; serving sweeps and
# search --mode inference likewise, and bad flag combinations exit 2 with
# one line.
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
# Candidates that only add work to a ZeRO-1 candidate of the same layout that
# fits (more recompute, or ZeRO-3) are not simulated; the premise is checked
# here on full runs of one layout: none < selective < full, ZeRO-1 <= ZeRO-3.
python3 - "$tmp/search.json" "$moesim" "$tmp" <<'PY' || fail=1
import json, subprocess, sys
d, moesim, tmp = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
layout = lambda e: (e["dp"], e["tp"], e["cp"], e["pp"], e["virtual_stages"], e["ep"], e["etp"],
                    e["micro_batch_size"])
weight = {"none": 0, "selective": 1, "selective_moe": 2, "full": 3}
zero1 = {}
for e in d["ranking"]:
    if e["zero_stage"] == 1:
        zero1[layout(e)] = min(zero1.get(layout(e), 9), weight[e["recompute"]])
for e in d["ranking"]:
    w, light = weight[e["recompute"]], zero1.get(layout(e))
    if light is not None and (w > light if e["zero_stage"] == 1 else w >= light):
        print("FAIL: dominated candidate simulated", e); sys.exit(1)
if d["rejected"].get("dominated", 0) == 0:
    print("FAIL: nothing dominated", d["rejected"]); sys.exit(1)
times = {}
for recompute, zero in (("none", 1), ("selective", 1), ("full", 1), ("none", 3)):
    s = {"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 1},
         "parallel": {"dp": 4, "tp": 1, "pp": 2, "ep": 4, "recompute": recompute,
                      "zero_stage": zero, "a2a_algo": "hierarchical"},
         "workload": {"seq_len": 512, "global_batch": 32},
         "routing": {"generator": "zipf:0.5", "seed": 1}, "gating": {"capacity_factor": "dropless"}}
    json.dump(s, open(f"{tmp}/dominated.json", "w"))
    run = subprocess.run([moesim, "run", f"{tmp}/dominated.json", "--json"], capture_output=True,
                         text=True)
    times[(recompute, zero)] = json.loads(run.stdout)["step_time_s"]
if not (times[("none", 1)] < times[("selective", 1)] < times[("full", 1)]
        and times[("none", 1)] <= times[("none", 3)]):
    print("FAIL: a dominated candidate is not slower", times); sys.exit(1)
PY
# --routing: the ranking names the generator; balanced routing is never slower
# for the same layout than zipf:0.5.
"$moesim" search --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --seq 512 \
  --routing uniform --json >"$tmp/search_uniform.json" 2>/dev/null || { echo "FAIL: search --routing"; fail=1; }
python3 - "$tmp/search_uniform.json" "$tmp/search.json" <<'PY' || fail=1
import json, sys
uni, zipf = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
key = lambda e: (e["dp"], e["tp"], e["pp"], e["ep"], e["micro_batch_size"], e["recompute"], e["zero_stage"])
z = {key(e): e["step_time_s"] for e in zipf["ranking"]}
same = (8, 1, 1, 8, 1, "none", 1)
u = [e for e in uni["ranking"] if key(e) == same][0]["step_time_s"]
if uni["routing"] != "uniform" or not u < z[same]:
    print("FAIL: uniform routing", uni["routing"], u, z[same]); sys.exit(1)
PY
# --virtual-stages: interleaved candidates appear where pp > 1 only, and the
# extrapolation from 2 pp micro-batches matches a full run of the same
# scenario (16 micro-batches) within 1%.
"$moesim" search --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 64 --seq 512 \
  --virtual-stages 2,1 --json >"$tmp/search_vpp.json" 2>/dev/null || { echo "FAIL: search --virtual-stages"; fail=1; }
python3 - "$tmp/search_vpp.json" "$moesim" "$tmp" <<'PY' || fail=1
import json, subprocess, sys
d, moesim, tmp = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
vs = {(e["pp"] > 1, e["virtual_stages"]) for e in d["ranking"]}
if vs != {(False, 1), (True, 1), (True, 2)}:
    print("FAIL: virtual stages in the ranking", vs); sys.exit(1)
e = [x for x in d["ranking"] if (x["dp"], x["pp"], x["virtual_stages"], x["ep"], x["micro_batch_size"],
     x["recompute"], x["zero_stage"]) == (4, 2, 2, 4, 1, "none", 1)][0]
s = {"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 1},
     "parallel": {"dp": 4, "tp": 1, "pp": 2, "ep": 4, "etp": 1, "sequence_parallel": False,
                  "zero_stage": 1, "micro_batch_size": 1, "recompute": "none",
                  "a2a_algo": "hierarchical", "pipeline_schedule": "interleaved", "virtual_stages": 2},
     "workload": {"seq_len": 512, "global_batch": 64},
     "routing": {"generator": "zipf:0.5", "seed": 1}, "gating": {"capacity_factor": "dropless"},
     "options": {"routing_samples": 1, "max_routings_per_step": 1 << 20}}
json.dump(s, open(f"{tmp}/vpp.json", "w"))
run = json.loads(subprocess.run([moesim, "run", f"{tmp}/vpp.json", "--json"], capture_output=True,
                                text=True).stdout)
if abs(e["step_time_s"] / run["step_time_s"] - 1) > 0.01:
    print("FAIL: interleaved extrapolation", e["step_time_s"], run["step_time_s"]); sys.exit(1)
PY
# 1F1B candidates with more micro-batches than pp + 2 are extrapolated along
# the line through pp + 1 and pp + 2 micro-batches: every one of them matches
# a full run of its scenario within 0.5% (the pipeline-shape formula used
# before was up to 7% off on these).
"$moesim" search --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 64 --seq 512 \
  --json >"$tmp/search_gb64.json" 2>/dev/null || { echo "FAIL: search --global-batch 64"; fail=1; }
python3 - "$tmp/search_gb64.json" "$moesim" "$tmp" <<'PY' || fail=1
import json, subprocess, sys
d, moesim, tmp = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
checked = 0
for e in d["ranking"]:
    if e["pp"] == 1 or e["recompute"] != "none" or 64 // (e["dp"] * e["micro_batch_size"]) <= e["pp"] + 2:
        continue
    s = {"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 1},
         "parallel": {"dp": e["dp"], "tp": e["tp"], "pp": e["pp"], "ep": e["ep"], "etp": e["etp"],
                      "sequence_parallel": e["tp"] > 1, "zero_stage": e["zero_stage"],
                      "micro_batch_size": e["micro_batch_size"], "recompute": "none",
                      "a2a_algo": "hierarchical"},
         "workload": {"seq_len": 512, "global_batch": 64},
         "routing": {"generator": "zipf:0.5", "seed": 1}, "gating": {"capacity_factor": "dropless"},
         "options": {"routing_samples": 1, "max_routings_per_step": 1 << 20}}
    json.dump(s, open(f"{tmp}/extrapolated.json", "w"))
    run = json.loads(subprocess.run([moesim, "run", f"{tmp}/extrapolated.json", "--json"],
                                    capture_output=True, text=True).stdout)
    if abs(e["step_time_s"] / run["step_time_s"] - 1) > 0.005:
        print("FAIL: extrapolation", e, run["step_time_s"]); sys.exit(1)
    checked += 1
if checked < 10:
    print("FAIL: only", checked, "extrapolated candidates checked"); sys.exit(1)
PY
# FP8 training search: every candidate trains in FP8 with BF16 Adam moments
# (the ModelZoo's FP8 recipe), and the ranking says so.
"$moesim" search --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --seq 512 \
  --dtype fp8 --json >"$tmp/search_fp8.json" 2>/dev/null || { echo "FAIL: search --dtype fp8"; fail=1; }
python3 - "$tmp/search_fp8.json" "$tmp/search.json" <<'PY' || fail=1
import json, sys
fp8, bf16 = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
if bf16["routing"] != "zipf:0.5" or fp8["dtype"] != "fp8" or bf16["dtype"] != "bf16" or not fp8["ranking"]:
    print("FAIL: search dtype", fp8["dtype"], bf16["dtype"]); sys.exit(1)
key = lambda e: (e["dp"], e["tp"], e["pp"], e["ep"], e["micro_batch_size"], e["recompute"],
                 e["zero_stage"])
free = {key(e): e["memory_headroom_bytes"] for e in bf16["ranking"]}
same = (8, 1, 1, 8, 1, "none", 1)
# BF16 moments and FP8 GEMM inputs leave the same layout more memory.
if not [e for e in fp8["ranking"] if key(e) == same][0]["memory_headroom_bytes"] > free[same]:
    print("FAIL: FP8 with BF16 moments did not free memory"); sys.exit(1)
PY
# Serving: a rate sweep writes the serving columns; p99 TTFT and TPOT plot
# together on a log axis.
cat >"$tmp/serving.json" <<'JSON'
{"model": "mixtral-8x7b", "cluster": {"preset": "dgx-h100", "nodes": 1},
 "workload": {"mode": "inference"}, "parallel": {"tp": 2},
 "serving": {"max_batch_size": 64, "slo": {"tpot_ms": 40}},
 "requests": {"count": 100, "arrival": "poisson", "rate_per_s": 10, "input_tokens": 512,
              "output_tokens": 32}}
JSON
echo '{"base": "serving.json", "axes": {"requests.rate_per_s": [5, 20, 80]}}' >"$tmp/rates.json"
"$moesim" sweep "$tmp/rates.json" -o "$tmp/s1" -j 2 >/dev/null 2>&1 || { echo "FAIL: serving sweep"; fail=1; }
"$moesim" sweep "$tmp/rates.json" -o "$tmp/s2" -j 1 >/dev/null 2>&1
cmp -s "$tmp/s1/summary.csv" "$tmp/s2/summary.csv" || { echo "FAIL: serving sweep -j 1 and -j 2 differ"; fail=1; }
python3 - "$tmp/s1/summary.csv" <<'PY' || fail=1
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
need = ["status", "throughput.output_tokens_per_s", "throughput.output_tokens_per_s_per_gpu",
        "throughput.input_tokens_per_s", "latency.ttft.p50_s", "latency.ttft.p99_s",
        "latency.tpot.p50_s", "latency.tpot.p99_s", "latency.e2e.p99_s", "goodput.requests_per_s",
        "kv_cache.peak_utilisation", "batch.mean", "preemptions"]
missing = [c for c in need if c not in rows[0]]
if missing or len(rows) != 3 or any(r["status"] != "ok" for r in rows):
    print("FAIL: serving summary", missing, [r["status"] for r in rows]); sys.exit(1)
if not float(rows[2]["throughput.output_tokens_per_s"]) > float(rows[0]["throughput.output_tokens_per_s"]):
    print("FAIL: more load did not serve more tokens"); sys.exit(1)
PY
"$moesim" plot "$tmp/s1/summary.csv" --x requests.rate_per_s --y latency.ttft.p99_s \
  --y latency.tpot.p99_s --log-y -o "$tmp/lat.svg" >/dev/null || { echo "FAIL: serving plot"; fail=1; }
[ "$(grep -c "<polyline" "$tmp/lat.svg")" = 2 ] && grep -q ">latency.tpot.p99_s<" "$tmp/lat.svg" ||
  { echo "FAIL: serving plot has not two named lines"; fail=1; }
# Dropless points drop nothing: a rate of 0 has no place on a log axis.
"$moesim" plot "$tmp/r1/summary.csv" --x capacity_factor --y drop_rate --log-y \
  -o "$tmp/x.svg" 2>"$tmp/err"
[ $? = 2 ] && grep -q "drop_rate is 0.0 at point 12; a log axis needs positive values" "$tmp/err" ||
  { echo "FAIL: --log-y with a zero"; cat "$tmp/err"; fail=1; }
# Serving layout search: ranked by goodput per GPU, rejections counted, JSON and CSV written.
"$moesim" search --mode inference --model mixtral-8x7b --cluster dgx-h100 --gpus 8 \
  --concurrency 64 --requests 96 --input-tokens 256 --output-tokens 32 --slo-tpot-ms 30 \
  --max-batch-sizes 64 --json -o "$tmp/serve.json" >"$tmp/out" 2>/dev/null ||
  { echo "FAIL: search --mode inference"; fail=1; }
python3 - "$tmp/serve.json" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
g = [e["goodput_requests_per_s_per_gpu"] for e in d["ranking"]]
if d["mode"] != "inference" or len(g) < 2 or g != sorted(g, reverse=True):
    print("FAIL: serving ranking not by goodput per GPU", g[:5]); sys.exit(1)
if d["enumerated"] != d["simulated"] + sum(d["rejected"].values()) or "out_of_memory" not in d["rejected"]:
    print("FAIL: serving search counts", d["enumerated"], d["simulated"], d["rejected"]); sys.exit(1)
PY
head -1 "$tmp/serve.json.csv" | grep -q "^rank,tp,attention_dp,ep,instances,two_batch_overlap" ||
  { echo "FAIL: serving search CSV"; fail=1; }
"$moesim" search --mode inference --model mixtral-8x7b --cluster dgx-h100 --gpus 8 \
  --concurrency 64 --requests 96 --slo-tpot-ms 30 --max-batch-sizes 64 --top 3 >"$tmp/out" 2>/dev/null
grep -q "goodput/GPU" "$tmp/out" && [ "$(grep -c '^ *[0-9]' "$tmp/out")" = 3 ] ||
  { echo "FAIL: serving search table"; cat "$tmp/out"; fail=1; }
"$moesim" search --mode inference --model tiny-moe --cluster dgx-h100 --gpus 16 \
  --concurrency 256 --requests 768 --input-tokens 128-384 --output-tokens 16-48 --slo-tpot-ms 5 \
  --max-batch-sizes 64 --redundant-experts 0,8 --disaggregation --top 60 -o "$tmp/split.json" \
  >"$tmp/split.txt" 2>/dev/null || { echo "FAIL: search --disaggregation"; fail=1; }
python3 - "$tmp/split.json" <<'PY' || fail=1
import csv, json, sys
d = json.load(open(sys.argv[1]))
split = [e for e in d["ranking"] if e["disaggregation"]]
if len(split) != 4 or any(e["tp"] is not None for e in split):
    print("FAIL: disaggregated rows", split[:1]); sys.exit(1)
if d["requests"]["input_tokens"] != {"dist": "uniform", "min": 128, "max": 384} or d["warnings"]:
    print("FAIL: search load", d["requests"], d["warnings"]); sys.exit(1)
rows = list(csv.DictReader(open(sys.argv[1] + ".csv")))
if len(rows) != len(d["ranking"]) or sum(r["prefill_nodes"] == "1" for r in rows) != 4:
    print("FAIL: disaggregated CSV"); sys.exit(1)
PY
grep -q "P 1n tp1 adp8 ep8 x1 | D 1n tp1 adp8 ep8 x1" "$tmp/split.txt" ||
  { echo "FAIL: disaggregated layout in the table"; cat "$tmp/split.txt"; fail=1; }
expect_usage_error() {  # expect_usage_error MESSAGE ARGS...
  local message=$1
  shift
  "$moesim" search "$@" >/dev/null 2>"$tmp/err"
  local rc=$?
  if [ $rc != 2 ] || [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q -- "$message" "$tmp/err"; then
    echo "FAIL: search $* gave exit $rc:"; cat "$tmp/err"; fail=1
  fi
}
serve=(--mode inference --model mixtral-8x7b --cluster dgx-h100 --gpus 8)
expect_usage_error "give one of them, not both" "${serve[@]}" --requests-rate 10 --concurrency 4 --slo-tpot-ms 50
expect_usage_error "give a request load" "${serve[@]}" --slo-tpot-ms 50
expect_usage_error "slo-tpot-ms: required" "${serve[@]}" --requests-rate 10
expect_usage_error "global-batch: a training option" "${serve[@]}" --requests-rate 10 --slo-tpot-ms 50 --global-batch 8
expect_usage_error "slo-tpot-ms: only with --mode inference" --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --slo-tpot-ms 50
expect_usage_error "mode: expected training or inference" --mode serving --model tiny-moe
expect_usage_error "requests-rate: expected requests per second > 0" "${serve[@]}" --requests-rate 0 --slo-tpot-ms 50
expect_usage_error "unrecognised option '--inference'" --inference x
expect_usage_error "dtype: expected bf16 or fp8, got 'fp4'" --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --dtype fp4
expect_usage_error "virtual-stages: expected comma-separated integers" --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --virtual-stages 0,2
expect_usage_error "virtual-stages: 2048 is more than 1024" --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --virtual-stages 1,2048
expect_usage_error "virtual-stages: a training option" "${serve[@]}" --requests-rate 10 --slo-tpot-ms 50 --virtual-stages 2
expect_usage_error "routing: generator 'zipf:x'" --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --routing zipf:x
expect_usage_error "routing: unknown routing generator 'bogus'" "${serve[@]}" --requests-rate 10 --slo-tpot-ms 50 --routing bogus
expect_usage_error "top: expected a count of rows >= 0, got -1" --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --top -1
expect_usage_error "top: expected a count of rows >= 0, got -3" "${serve[@]}" --requests-rate 10 --slo-tpot-ms 50 --top -3
expect_usage_error "disaggregation: only with --mode inference" --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --disaggregation
expect_usage_error "input-tokens: expected tokens N or a range MIN-MAX" "${serve[@]}" --requests-rate 10 --slo-tpot-ms 50 --input-tokens 512-
expect_usage_error "output-tokens: the range's maximum 8 is below its minimum 16" "${serve[@]}" --requests-rate 10 --slo-tpot-ms 50 --output-tokens 16-8
expect_usage_error "redundant-experts: expected comma-separated integers in \[0, " "${serve[@]}" --requests-rate 10 --slo-tpot-ms 50 --redundant-experts 0,-1
expect_usage_error "max-layouts: the search has more than 20000 layouts" --mode inference --model tiny-moe --cluster dgx-h100 --gpus 65536 --requests-rate 10 --slo-tpot-ms 50 --disaggregation --redundant-experts 0,8,16
expect_usage_error "max-layouts: only with --mode inference" --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --max-layouts 5
[ $fail = 0 ] && echo "explore cli: all checks passed"
exit $fail
