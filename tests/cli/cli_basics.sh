#!/usr/bin/env bash
# End-to-end checks of the moesim command line: help, version, exit codes,
# one-line errors, atomic report output and byte-identical reruns.
set -u
moesim=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check <description> <expected exit code> <command...>
  local what=$1 want=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" != "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"; cat "$tmp/err"; fail=1
  fi
}
one_line_error() {  # the last command's stderr is exactly one line containing $1
  if [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q -- "$1" "$tmp/err"; then
    echo "FAIL: expected one error line mentioning '$1', got:"; cat "$tmp/err"; fail=1
  fi
}

check "help" 0 "$moesim" --help
grep -q "run" "$tmp/out" || { echo "FAIL: --help does not list run"; fail=1; }
check "version" 0 "$moesim" --version
grep -q "^moesim [0-9]" "$tmp/out" || { echo "FAIL: --version output"; fail=1; }
check "unknown command" 2 "$moesim" frobnicate
one_line_error "unknown command 'frobnicate'"
check "unknown option" 2 "$moesim" run --frobnicate
one_line_error "frobnicate"
check "bench unknown option" 2 "$moesim" bench engine --bogus 1
one_line_error "bogus"
# A negative count is refused, not wrapped to 2^64 - 5 (which ran forever).
check "bench negative events" 2 "$moesim" bench engine --events -5 --json
one_line_error "events: expected an integer in \[1, 100000000000\], got -5"
check "bench huge pending" 2 "$moesim" bench engine --pending 1000000000 --json
one_line_error "pending: expected an integer in \[1, 100000000\]"
# An unknown preset name lists both kinds (a cluster was as likely meant).
check "unknown preset" 2 "$moesim" presets dgx-h101
one_line_error "unknown preset 'dgx-h101' (known: .*dgx-h100 (cluster)"
check "gpu preset" 0 "$moesim" presets h800
grep -q '"hbm_mib"' "$tmp/out" || { echo "FAIL: presets h800 printed no GPU"; fail=1; }
# A preset as `presets NAME --json` prints it is an inline cluster that runs
# as the preset does, byte for byte (its GPU's SM count, which overlapped
# communication takes from, included).
check "cluster preset" 0 "$moesim" presets dgx-h100 --json
python3 - "$tmp/out" "$tmp" <<'PY' || fail=1
import json, sys
cluster = json.load(open(sys.argv[1]))
scenario = {"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 2},
            "parallel": {"dp": 16, "ep": 8, "moe_a2a_overlap": "1f1b"},
            "workload": {"seq_len": 512, "global_batch": 32}}
json.dump(scenario, open(sys.argv[2] + "/by_name.json", "w"))
scenario["cluster"] = dict(cluster, nodes=2)
json.dump(scenario, open(sys.argv[2] + "/inline.json", "w"))
PY
check "preset by name" 0 "$moesim" run "$tmp/by_name.json" -o "$tmp/by_name.report.json"
check "preset inline" 0 "$moesim" run "$tmp/inline.json" -o "$tmp/inline.report.json"
cmp -s "$tmp/by_name.report.json" "$tmp/inline.report.json" ||
  { echo "FAIL: the printed preset does not run as the preset"; fail=1; }

tiny='{"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 1},
  "parallel": {"dp": 8, "ep": 8}, "workload": {"seq_len": 512, "global_batch": 16}}'
echo "$tiny" >"$tmp/tiny.json"
check "tiny scenario" 0 "$moesim" run "$tmp/tiny.json" --json
grep -q '"step_time_s"' "$tmp/out" || { echo "FAIL: run --json has no step_time_s"; fail=1; }
echo "$tiny" | sed 's/"nodes": 1/"nodes": -1/' >"$tmp/bad.json"
check "out-of-range field" 2 "$moesim" run "$tmp/bad.json"
one_line_error "cluster.nodes: expected an integer in \[1,"
echo "$tiny" | sed 's/"dp": 8/"dp": 8, "dpp": 2/' >"$tmp/typo.json"
check "unknown field" 2 "$moesim" run "$tmp/typo.json"
one_line_error "parallel.dpp: unknown field"
echo "$tiny" | sed 's/"dp": 8, "ep": 8/"dp": 4, "ep": 4/' >"$tmp/gpus.json"
check "impossible parallel config" 2 "$moesim" run "$tmp/gpus.json"
one_line_error "must equal the cluster's 8 GPUs"
echo "$tiny" | sed 's/"ep": 8/"ep": 3/' >"$tmp/ep.json"
check "ep does not divide experts" 2 "$moesim" run "$tmp/ep.json"
one_line_error "parallel.ep: 3 must divide"
echo "$tiny" | sed 's/tiny-moe/tiny-moo/' >"$tmp/model.json"
check "unknown model" 2 "$moesim" run "$tmp/model.json"
one_line_error "unknown model 'tiny-moo'"
printf '{"model": "tiny-moe", ' >"$tmp/trunc.json"
check "malformed JSON" 2 "$moesim" run "$tmp/trunc.json"
one_line_error "byte"
check "missing file" 2 "$moesim" run "$tmp/nope.json"
one_line_error "nope.json"
check "timeline" 0 "$moesim" run "$tmp/tiny.json" --timeline "$tmp/trace.json"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['traceEvents']) > 10" \
  "$tmp/trace.json" || { echo "FAIL: timeline is not valid trace JSON"; fail=1; }
# --request-log: serving scenarios only; one JSON line per request.
check "request log on training" 2 "$moesim" run "$tmp/tiny.json" --request-log "$tmp/r.jsonl"
one_line_error "--request-log: only serving scenarios"
[ -e "$tmp/r.jsonl" ] && { echo "FAIL: a refused request log was written"; fail=1; }
cat >"$tmp/serve.json" <<'JSON'
{"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 1},
 "workload": {"mode": "inference"}, "parallel": {"tp": 1},
 "requests": {"count": 40, "arrival": "closed", "concurrency": 8,
              "input_tokens": 128, "output_tokens": 16}}
JSON
check "request log" 0 "$moesim" run "$tmp/serve.json" --request-log "$tmp/r.jsonl"
python3 - "$tmp/r.jsonl" <<'PY2' || { echo "FAIL: request log"; fail=1; }
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [l["request"] for l in lines] == list(range(40)), lines[:2]
assert all(l["generated"] == 16 and l["ttft_s"] > 0 for l in lines)
PY2

mkdir "$tmp/a"  # -o never creates folders
check "default scenario" 0 "$moesim" run -o "$tmp/a/report.json"
check "default scenario again" 0 "$moesim" run -o "$tmp/b.json"
cmp -s "$tmp/a/report.json" "$tmp/b.json" || { echo "FAIL: reports differ between runs"; fail=1; }
ls "$tmp/a" | grep -q tmp && { echo "FAIL: temp file left behind"; fail=1; }
check "bench engine" 0 "$moesim" bench engine --events 20000 --pending 1000 --json
grep -q '"events_per_second"' "$tmp/out" || { echo "FAIL: bench engine JSON"; fail=1; }

# network_model: "auto" resolves to the flow-level network for small steps
# (the default scenario has 16 GPUs); "analytic" and "flow" are kept as given
# and give close step times when little traffic overlaps; anything else is
# rejected naming the field.
python3 - "$tmp/a/report.json" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["scenario"]["options"]["network_model"] == "flow", r["scenario"]["options"]
assert r["simulation"]["network_model"] == "flow"
assert any(w.startswith("network model: flow") for w in r["warnings"]), r["warnings"]
PY
default_scenario=$(dirname "$0")/../../examples/mixtral-8x7b-h100-16gpu.json
for model in analytic flow; do
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); s.setdefault('options', {})['network_model']=sys.argv[2]; json.dump(s, open(sys.argv[3], 'w'))" \
    "$default_scenario" "$model" "$tmp/$model.json"
  check "$model network" 0 "$moesim" run "$tmp/$model.json" -o "$tmp/$model.out"
done
python3 - "$tmp/analytic.out" "$tmp/flow.out" <<'PY' || fail=1
import json, sys
a, f = (json.load(open(p)) for p in sys.argv[1:3])
assert a["simulation"]["network_model"] == "analytic" and f["simulation"]["network_model"] == "flow"
# Bandwidth-bound all-to-alls that rarely overlap: the two models agree closely.
assert abs(f["step_time_s"] - a["step_time_s"]) <= 0.05 * a["step_time_s"], (a["step_time_s"], f["step_time_s"])
PY
echo "$tiny" | sed 's/}}$/}, "options": {"network_model": "packet"}}/' >"$tmp/badnet.json"
check "unknown network model" 2 "$moesim" run "$tmp/badnet.json"
one_line_error "options.network_model"

# moesim collective names the algorithm that ran: auto picks NVLS on one DGX
# H100 (busbw ~488 GB/s, nccl-tests ~480), the ring when asked (~369); an
# algorithm NCCL does not offer for the op and group is a one-line error.
check "collective auto" 0 "$moesim" collective --cluster dgx-h100 --op all_reduce --bytes 8e9 --ranks 8 --json
python3 - "$tmp/out" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["algo"] == "nvls" and 470 < d["busbw_gbps"] < 500, d
PY
check "collective ring" 0 "$moesim" collective --cluster dgx-h100 --op all_reduce --bytes 8e9 --ranks 8 --algo ring --json
python3 - "$tmp/out" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["algo"] == "ring" and 360 < d["busbw_gbps"] < 375, d
PY
check "collective nvls across nodes" 2 "$moesim" collective --cluster dgx-h100 --nodes 2 --op all_reduce --bytes 1e9 --ranks 16 --algo nvls
one_line_error "these ranks span 2 nodes"
check "collective tree reduce_scatter" 2 "$moesim" collective --cluster dgx-h100 --nodes 2 --op reduce_scatter --bytes 1e9 --ranks 16 --algo tree
one_line_error "tree for all_reduce across nodes"
check "collective low_latency" 0 "$moesim" collective --cluster hgx-h800 --nodes 2 --op all_to_all --bytes 7585792 --ranks 16 --algo low_latency --json
grep -q '"algo": "low_latency"' "$tmp/out" || { echo "FAIL: low_latency all_to_all"; fail=1; }

[ $fail = 0 ] && echo "cli basics: all checks passed"
exit $fail
