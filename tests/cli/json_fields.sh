#!/usr/bin/env bash
# Every field the commands print as JSON is documented in README.md,
# reports/SCHEMA.md, workloads/MODELS.md or hwmodels/PRESETS.md, so that
# scripts written against them know what each means (documented_fields.py
# says how a field counts as documented). Each command runs on a small load;
# `validate published --json` is checked in validate_published.sh, which
# already runs it. Usage: json_fields.sh MOESIM ROOT
set -u
moesim=$1
root=$2
. "$(dirname "$0")/lib.sh"
examples=$root/examples
# Outputs are $tmp/*.json; the scenarios this script writes go to $tmp/in.
mkdir "$tmp/in"

# run_json NAME COMMAND...: the command's stdout as $tmp/NAME.json.
run_json() {
  local name=$1
  shift
  "$@" >"$tmp/$name.json" 2>"$tmp/err" || { echo "FAIL: $*"; cat "$tmp/err"; fail=1; }
}

# Training reports: the default example, one with optional sections
# (activation offload), and one out of memory.
run_json train "$moesim" run "$examples/mixtral-8x7b-h100-16gpu.json" --json
run_json offload "$moesim" run "$examples/mixtral-8x7b-h100-16gpu-offload.json" --json
cat >"$tmp/in/oom.json" <<'JSON'
{"model": "mixtral-8x22b", "cluster": {"preset": "dgx-h100", "nodes": 1},
 "parallel": {"dp": 8, "ep": 1}, "workload": {"seq_len": 4096, "global_batch": 8}}
JSON
run_json train_oom "$moesim" run "$tmp/in/oom.json" --json

# Serving reports: colocated with an SLO (and its request log), disaggregated
# (preempting by swap), out of memory.
run_json serve "$moesim" run "$examples/mixtral-8x7b-h100-tp2-poisson.json" --json \
  --request-log "$tmp/serve_requests.jsonl"
python3 - "$examples/mixtral-8x7b-h100-tp2-poisson.json" "$tmp" <<'PY' || fail=1
import json, sys
s = json.load(open(sys.argv[1]))
s["cluster"]["nodes"] = 2
s["requests"]["count"] = 200
s["parallel"] = {"disaggregation": {
    "prefill": {"nodes": 1, "parallel": {"tp": 2, "attention_dp": 1, "ep": 1}},
    "decode": {"nodes": 1, "parallel": {"tp": 1, "attention_dp": 8, "ep": 8}}}}
s.setdefault("serving", {})["preemption"] = "swap"  # its report fields too
json.dump(s, open(sys.argv[2] + "/in/split.json", "w"))
s["model"] = "deepseek-v3"
s["cluster"]["nodes"] = 1
s["parallel"] = {"tp": 8, "attention_dp": 1, "ep": 1}
json.dump(s, open(sys.argv[2] + "/in/serve_oom.json", "w"))
PY
run_json serve_split "$moesim" run "$tmp/in/split.json" --json
run_json serve_oom "$moesim" run "$tmp/in/serve_oom.json" --json
[ "$(python3 -c "import json; print(json.load(open('$tmp/train_oom.json'))['status'], \
  json.load(open('$tmp/serve_oom.json'))['status'])")" = "out_of_memory out_of_memory" ] ||
  { echo "FAIL: the out-of-memory scenarios fit; pick larger ones"; fail=1; }

# Searches, both modes (the serving one with prefill/decode splits).
run_json search "$moesim" search --model tiny-moe --cluster dgx-h100 --gpus 8 \
  --global-batch 16 --seq 1024 --json
run_json search_serving "$moesim" search --mode inference --model mixtral-8x7b \
  --cluster dgx-h100 --gpus 16 --requests-rate 20 --requests 200 --slo-tpot-ms 50 \
  --disaggregation --json

# The other commands' JSON: collectives, the catalogs, routing statistics,
# each benchmark on a small load.
run_json collective "$moesim" collective --cluster dgx-h100 --nodes 2 --op all_to_all \
  --bytes 1e6 --ranks 16 --json
run_json models "$moesim" models --json
for model in $(python3 -c "import json; print(' '.join(m['name'] for m in json.load(open('$tmp/models.json'))))"); do
  run_json "model_$model" "$moesim" models show "$model" --json
done
run_json presets "$moesim" presets --json
for preset in dgx-h100 h100-sxm mi300x-8; do
  run_json "preset_$preset" "$moesim" presets "$preset" --json
done
"$moesim" trace generate --model mixtral-8x7b --tokens 256 -o "$tmp/t.moetrace" >/dev/null || fail=1
run_json trace_stats "$moesim" trace stats "$tmp/t.moetrace" --json
run_json bench_engine "$moesim" bench engine --events 10000 --pending 100 --json
run_json bench_network "$moesim" bench network --gpus 16 --bytes-per-gpu 65536 --json
run_json bench_trace "$moesim" bench trace --routings 10000 --path "$tmp/bench.moetrace" --json
run_json bench_step "$moesim" bench step --scenario "$examples/mixtral-8x7b-h100-16gpu.json" --json
python3 - "$examples/deepseek-v3-h100-decode-ep72.json" "$tmp/in/closed.json" <<'PY' || fail=1
import json, sys
s = json.load(open(sys.argv[1]))
s.update({"model": "mixtral-8x7b", "workload": {"mode": "inference", "dtype": "bf16"},
          "cluster": {"preset": "dgx-h100", "nodes": 1},
          "parallel": {"tp": 2, "attention_dp": 1, "ep": 1}})
s["requests"].update({"concurrency": 8, "output_tokens": 16})
s["serving"]["two_batch_overlap"] = False  # nothing to overlap without ep
s["serving"]["chunked_prefill"] = 256  # its prompts prefill here, in chunks of the budget
s.pop("gating", None)
json.dump(s, open(sys.argv[2], "w"))
PY
run_json bench_inference "$moesim" bench inference --scenario "$tmp/in/closed.json" --iterations 20 --json
run_json bench_search "$moesim" bench search --model tiny-moe --cluster dgx-h100 --gpus 8 \
  --global-batch 16 --seq 1024 --json
run_json bench_kernel "$moesim" bench kernel --quick --no-torch --threads 1 --reps 1 --json

# Sweep summaries, training and serving: their columns are report fields
# and the axes.
"$moesim" sweep "$examples/mixtral-8x7b-sweep.json" -o "$tmp/sweep" >/dev/null 2>&1 || fail=1
"$moesim" sweep "$examples/mixtral-8x7b-h100-rate-sweep.json" -o "$tmp/rate" >/dev/null 2>&1 ||
  fail=1

# The check itself fails on a field no document names, and on fields named
# only in a fenced code block (example output, not documentation).
printf '{"status": "ok", "nowhere_documented_s": 1}\n' >"$tmp/in/undocumented.json"
if python3 "$(dirname "$0")/documented_fields.py" "$root/README.md" -- \
  "$tmp/in/undocumented.json" >"$tmp/out"; then
  echo "FAIL: documented_fields.py passed an undocumented field"; fail=1
fi
grep -q "undocumented: nowhere_documented_s" "$tmp/out" ||
  { echo "FAIL: documented_fields.py did not name the field"; cat "$tmp/out"; fail=1; }
printf '# t\n```\n`fenced_only`\n```\n' >"$tmp/in/fenced.md"
printf '{"fenced_only": 1}\n' >"$tmp/in/fenced.json"
if python3 "$(dirname "$0")/documented_fields.py" "$tmp/in/fenced.md" -- \
  "$tmp/in/fenced.json" >/dev/null; then
  echo "FAIL: a name in a fenced block counted as documented"; fail=1
fi

python3 "$(dirname "$0")/documented_fields.py" "$root/README.md" "$root/reports/SCHEMA.md" \
  "$root/workloads/MODELS.md" "$root/hwmodels/PRESETS.md" --skip scenario --skip rejected --skip sources --skip "shapes[].torch" \
  -- "$tmp"/*.json "$tmp/sweep/summary.jsonl" "$tmp/rate/summary.jsonl" \
  "$tmp/serve_requests.jsonl" || fail=1
exit $fail
