#!/usr/bin/env bash
# `moesim validate published` as a user runs it, and the framework-overhead
# option it rests on: Megatron-Core's Qwen3-235B-A22B runs on 256 H100s
# (yanring/Megatron-MoE-ModelZoo, best_practice/Qwen3/readme.md; shared/
# reference/measurements.md) within 20% and ranked the right way round.
set -u
moesim=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

if ! "$moesim" validate published --json >"$tmp/v.json" 2>"$tmp/err"; then
  echo "FAIL: validate published exited non-zero"; cat "$tmp/err"; fail=1
fi
# Every field of the JSON is documented (README's validate published section).
python3 "$root/tests/cli/documented_fields.py" "$root/README.md" -- "$tmp/v.json" || fail=1
python3 - "$tmp/v.json" "$root" <<'PY' || fail=1
import json, sys
v = json.load(open(sys.argv[1]))
rows = v["layouts"]
roles = [r["role"] for r in rows]
assert roles[:3] == ["prediction", "prediction", "prediction"], roles
assert set(roles[3:5]) <= {"reference"}, roles
# The long-context row (Qwen3-235B, 128K tokens, TP4 CP8 EP8 PP8 VPP4): it fits
# in an H100 and is predicted; a regression guard around where the model
# stands (README: -3.4%).
long = rows[5]
assert long["role"] == "prediction" and "CP8" in long["layout"], long
assert long.get("status", "ok") == "ok" and long["predicted_step_time_s"] > 0, long
assert abs(long["error"]) < 0.2, long
for r in rows[:3]:
    err = (r["predicted_step_time_s"] - r["published_step_time_s"]) / r["published_step_time_s"]
    assert abs(r["error"] - err) < 1e-12, r
# The rest of the long-context table: 16K-64K dropless, and every length with
# Megatron's --moe-router-force-load-balancing (uniform routing). All
# predictions but the 32K dropless row, which calibrates the examples'
# routing skew. With routing skew out of the way the model is within 10%
# (README: -3% to -7%): a regression guard.
forced = [r for r in rows if r["layout"].endswith("forced balance")]
assert len(forced) == 4 and len(rows) == 13, [r["layout"] for r in rows]
for r in rows[6:]:
    calibration = r["layout"] == "DeepEP TP4 CP2 EP8 PP8 VPP4 seq 32K"
    assert r["role"] == ("calibration" if calibration else "prediction"), r
    assert r.get("status", "ok") == "ok", r
    assert "examples/qwen3-235b-h100-128k-cp8.json with workload.seq_len" in r["scenario"], r
for r in forced:
    assert "routing.generator uniform" in r["scenario"], r
    assert abs(r["error"]) < 0.1, r
# Per length, what imbalance costs: the dropless step over the forced-balance
# step. Published: 295/237, 335/277, 368/320, 389/357 TFLOPS.
cost = {c["seq_len"]: c for c in v["imbalance_cost"]}
assert sorted(cost) == [16384, 32768, 65536, 131072], cost
for seq, (dropless, balanced) in {16384: (237, 295), 32768: (277, 335), 65536: (320, 368),
                                  131072: (357, 389)}.items():
    assert abs(cost[seq]["published"] - balanced / dropless) < 1e-9, cost[seq]
    # The example's routing skew costs something, less as attention grows;
    # 32K calibrates it (to 0.5%), the others are predicted within 10%
    # (README: 16K 1.149 against 1.245, 64K and 128K within 0.4%).
    assert cost[seq]["predicted"] > 1, cost[seq]
    tolerance = 0.005 if seq == 32768 else 0.1
    assert abs(cost[seq]["predicted"] / cost[seq]["published"] - 1) < tolerance, cost[seq]
assert cost[16384]["predicted"] > cost[131072]["predicted"], cost
by_layout = {r["layout"]: r for r in rows}
for seq in ("16K", "32K", "64K", "128K"):
    cp = {"16K": 1, "32K": 2, "64K": 4, "128K": 8}[seq]
    name = f"DeepEP TP4 CP{cp} EP8 PP8 VPP4 seq {seq}"
    ratio = (by_layout[name]["predicted_step_time_s"] /
             by_layout[name + " forced balance"]["predicted_step_time_s"])
    assert abs(cost[{"16K": 16384, "32K": 32768, "64K": 65536, "128K": 131072}[seq]]["predicted"]
               - ratio) < 1e-12, seq
# One figure is calibrated: the examples' routing skew, on the 32K row's
# imbalance cost (the per-pass overhead once fitted to the DeepEP row
# defaults to 0). Every Qwen3 example routes the same way.
cal = v["calibrated"]
assert list(cal) == ["routing.generator"], cal
assert cal["routing.generator"]["row"] == "DeepEP TP4 CP2 EP8 PP8 VPP4 seq 32K", cal
assert cal["routing.generator"]["value"].startswith("sequence:"), cal
assert abs(cal["routing.generator"]["published_imbalance_cost"] - 335 / 277) < 1e-12, cal
import glob
qwen3 = glob.glob(sys.argv[2] + "/examples/qwen3-235b-h100-*.json")
assert len(qwen3) == 6, qwen3
for f in qwen3:
    assert json.load(open(f))["routing"]["generator"] == cal["routing.generator"]["value"], f
# Predictions: a regression guard around where the model stands (README:
# the all-to-all row -18.5%, DeepEP +5.3%, the 1F1B-overlap row -16.7%).
assert abs(rows[1]["error"]) < 0.15, rows[1]
for r in (rows[0], rows[2]):
    assert abs(r["error"]) < 0.25, r
# Published: 1F1B overlap shortens the DeepEP step (19.7 -> 17.6 s); so must the model.
assert rows[2]["predicted_step_time_s"] < rows[1]["predicted_step_time_s"]
assert isinstance(v["faster_layout_ranked_faster"], bool)
# DeepSeek-V3's own pre-training (technical report arXiv:2412.19437, section 1:
# 180K H800 GPU hours per trillion tokens on 2,048 H800s), a reference: per
# step of 15,360 x 4,096 tokens that is 180e3 x 3600 / 1e12 x 62,914,560 /
# 2,048 = 19.906 s. The model is a quarter faster (README: -26.0%); the guard
# keeps it on the fast side and the two figures consistent.
prod = v["production"]
assert prod["role"] == "reference" and prod["status"] == "ok", prod
assert prod["scenario"] == "examples/deepseek-v3-h800-2048gpu-dualpipe.json", prod
assert abs(prod["published_step_time_s"] - 180e3 * 3600 / 1e12 * 15360 * 4096 / 2048) < 1e-9
assert abs(prod["predicted_gpu_hours_per_trillion_tokens"] -
           prod["predicted_step_time_s"] * 2048 / 3600 / (15360 * 4096) * 1e12) < 1e-6, prod
assert -0.7 < prod["error"] < 0, prod
# Megatron-Bridge's force-balanced DGX-H100 rows (docs/performance-summary-
# archive.md): step time = GBS x seq_len / (tokens/s/GPU x GPUs). DeepSeek-V3,
# NeMo 25.09: 8,192 x 4,096 over 1,297 x 330 / 338 (blockwise FP8) x 1,024;
# Qwen3-235B, 25.11: 2,048 x 4,096 over 1,575 x 256; GPT-OSS-120B, 26.04.01:
# 1,280 x 4,096 over 5,824 x 64. The Megatron-Core MoE report's H100 rows
# (arXiv:2603.07685 Table 11): DeepSeek-V3 8,192 x 4,096 over 1,412 x 1,024;
# Qwen3-235B 2,048 x 4,096 over 2,132 x 256. Predictions; a guard around
# where they stand (README: all fast, by 15% to 37%).
bridge, report = v["megatron_bridge"], v["megatron_core_report"]
published = {r["layout"].split()[0]: r for r in bridge["rows"]}
assert sorted(published) == ["DeepSeek-V3", "GPT-OSS-120B", "Qwen3-235B"], published.keys()
assert abs(published["DeepSeek-V3"]["published_step_time_s"] -
           8192 * 4096 / (1297 * 330 / 338 * 1024)) < 1e-9
assert abs(published["Qwen3-235B"]["published_step_time_s"] - 2048 * 4096 / (1575 * 256)) < 1e-9
assert abs(published["GPT-OSS-120B"]["published_step_time_s"] - 1280 * 4096 / (5824 * 64)) < 1e-9
in_report = {r["layout"].split()[0]: r for r in report["rows"]}
assert sorted(in_report) == ["DeepSeek-V3", "Qwen3-235B"], in_report.keys()
assert abs(in_report["DeepSeek-V3"]["published_step_time_s"] - 8192 * 4096 / (1412 * 1024)) < 1e-9
assert abs(in_report["Qwen3-235B"]["published_step_time_s"] - 2048 * 4096 / (2132 * 256)) < 1e-9
for table in (bridge, report):
    for r in table["rows"]:
        assert r["role"] == "prediction" and "routing.generator uniform" in r["scenario"], r
        assert -0.6 < r["error"] < 0, r
        err = r["predicted_step_time_s"] / r["published_step_time_s"] - 1
        assert abs(r["error"] - err) < 1e-12, r
    assert table["max_abs_error"] == max(abs(r["error"]) for r in table["rows"])
# Communication rows: DeepEP normal and NCCL within 15%, bottlenecks named.
comm = v["communication"]
for table in ("deepep_normal", "nccl"):
    for r in comm[table]["rows"]:
        assert abs(r["error"]) < 0.15, r
        assert r["bottleneck"] in ("nvlink", "nic", "spine", "leaf_uplink", "sm_copy"), r
# The bottleneck named on DeepEP's inter-node rows agrees with how busy the
# published figure itself says the NICs were (DeepEP counts a token once per
# destination node, its own included, which never crosses a NIC:
# tests/legacy/test_internode.py, csrc/kernels/legacy/internode.cu): NIC where
# the published rate keeps them over 75% busy (EP32, EP64), NVLink where it
# leaves them under 60% (EP16: 43%).
inter = [r for r in comm["deepep_normal"]["rows"] if "published_nic_load" in r]
assert len(inter) == 6, inter
for r in inter:
    load = r["published_nic_load"]
    assert (r["bottleneck"] == "nic" and load > 0.75) or (
        r["bottleneck"] == "nvlink" and load < 0.6), r
assert [r["bottleneck"] for r in inter if r["row"].startswith("EP16")] == ["nvlink"] * 2, inter
# DeepEP's maintainers name NVLink at EP16 ("when the RDMA bandwidth reaches
# 43 GB/s, the NVLink bandwidth will exceeds 140 GB/s": DeepEP issue #285),
# the NIC at EP32 and EP64; the NVL rate the routing of DeepEP's test implies
# at the published time agrees (over 140 GB/s at EP16).
for r in inter:
    assert r["bottleneck"] == r["published_bottleneck"], r
    if r["row"].startswith("EP16"):
        assert r["published_nvl_gbps"] > 140, r
# The low-latency table meets the issue's target: every prediction row within
# 15% (the largest, EP128 NVLink-assisted combine, -11.2%); the two EP8
# NVLink-assisted rows calibrate the copy rate and the fixed kernel time, so
# they match.
for r in comm["deepep_low_latency"]["rows"]:
    assert abs(r["error"]) < (0.15 if r["role"] == "prediction" else 0.005), r
assert comm["deepep_low_latency"]["max_abs_error"] < 0.15, comm["deepep_low_latency"]
# DeepSeek's production trace (deepseek-ai/profile-data train.json, EP64 on
# H800): reference rows, the trace's kernel means in ms. The model prices the
# normal kernels at the unit test's rate (the same kernel as the EP64 rows
# above), so it comes out 30-50% fast against production: the trace's kernels
# run on 20 SMs beside compute, the unit test's on 24 alone. If a mechanism
# for that is added, this band moves with it.
prod = comm["deepep_production"]
assert prod["max_abs_error"] is None, prod
assert [r["row"] for r in prod["rows"]] == [
    "EP64 dispatch, forward", "EP64 dispatch, backward (cached)",
    "EP64 combine, both directions"], prod
assert [round(r["published"], 4) for r in prod["rows"]] == [4.3458, 3.4052, 6.181], prod
for r in prod["rows"]:
    assert r["role"] == "reference" and r["metric"] == "ms per kernel (trace mean)", r
    assert -0.55 < r["error"] < -0.25, r
    assert abs(r["predicted"] / r["published"] - 1 - r["error"]) < 1e-12, r
# Forward and backward dispatch move the same FP8 tokens: one prediction.
assert prod["rows"][0]["predicted"] == prod["rows"][1]["predicted"], prod
# Serving: SGLang's large-scale EP deployment of DeepSeek-V3 (lmsys blog
# 2025-05-05). Prefill is fast by 29-38% (README
# "Validation"), a regression guard around where it stands; decode within
# 20% and the two-batch-overlap changes within 8 points of the published ones
# (the decode rows on the blog's pure-RDMA low-latency kernels; at 32 tokens
# per GPU -19.7% against -27%: without overlap SGLang runs the shared experts
# before the dispatch, so nothing hides them there, and with it part of each
# low-latency kernel's fixed 37 us hides behind the other micro-batch). What it must
# get right: throughput falls with prompt length, two-batch overlap helps at
# 256 tokens per GPU and hurts at 32. Reference rows, outside the target:
# DeepSeek's own profile, and the blog's prefill overlap ablation (each load
# without overlap, and the overlap's gain: positive, as published).
serving = v["serving"]
rows = {r["row"]: r for r in serving["rows"]}
assert len(rows) == 15, rows.keys()
for r in serving["rows"]:
    reference = (r["row"].startswith("DeepSeek") or "tokens per GPU, " in r["row"]
                 or "EPLB" in r["row"])
    assert r["role"] == ("reference" if reference else "prediction"), r
    if "change" not in r["metric"]:
        assert abs(r["predicted"] / r["published"] - 1 - r["error"]) < 1e-12, r
        assert abs(r["error"]) < 0.8, r
    elif "EPLB" in r["row"]:
        # EPLB pays, as published (+49%), by less (README "Validation").
        assert 0.1 < r["predicted"] < r["published"], r
    elif reference:
        assert r["published"] > 0 and r["predicted"] > 0 and abs(r["error"]) < 0.2, r
    else:
        assert abs(r["error"]) < 0.08, r
assert abs(rows["decode EP72, 256 requests per GPU"]["error"]) < 0.2, rows
assert serving["prompt_length_trend_right"] is True
assert serving["overlap_signs_right"] is True
assert serving["within_20_percent"] == (serving["max_abs_throughput_error"] <= 0.2)
target = [r for r in serving["rows"] if r["role"] == "prediction" and "change" not in r["metric"]]
assert serving["max_abs_throughput_error"] == max(abs(r["error"]) for r in target), serving
# The DeepSeek profile row's layer, part by part (moesim's parts each alone):
# the overlapped layer takes at least its compute and at least its
# communication, and is the profile row's iteration over DeepSeek-V3's 61
# layers.
parts = {r["part"].split(" (")[0]: r for r in serving["prefill_layer"]}
assert len(parts) == 8, parts.keys()
assert all(r["predicted_ms"] > 0 and r["profile_ms"] > 0 for r in parts.values()), parts
p = {k: r["predicted_ms"] for k, r in parts.items()}
assert p["all compute kernels"] > p["attention core"] + p["routed experts"] + p["GEMMs"], p
assert abs(p["all compute kernels"] - p["attention core"] - p["routed experts"] - p["GEMMs"]
           - p["other kernels"]) < 1e-9, p
assert p["the layer, overlapped"] >= max(p["all compute kernels"], p["dispatch"] + p["combine"]), p
profile_row = rows["DeepSeek's profile: prefill EP32 on H800, 4K"]["predicted"]
assert abs(p["the layer, overlapped"] - 16384 / (profile_row / 8) / 61 * 1e3) < 1e-6, p
# The 4K row and its balanced twin, part by part against SGLang's profile of
# them (same chart): the same identities, each layer its row's iteration.
for key, row in (("prefill_layer_4k", "prefill EP32, 4K prompts"),
                 ("prefill_layer_4k_balanced", "prefill EP32, 4K prompts, balanced experts")):
    t = {r["part"].split(" (")[0]: r for r in serving[key]}
    assert list(t) == list(parts), (key, t.keys())
    q = {k: r["predicted_ms"] for k, r in t.items()}
    assert abs(q["all compute kernels"] - q["attention core"] - q["routed experts"] - q["GEMMs"]
               - q["other kernels"]) < 1e-9, (key, q)
    assert q["the layer, overlapped"] >= max(q["all compute kernels"],
                                             q["dispatch"] + q["combine"]), (key, q)
    per_node = rows[row]["predicted"]
    assert abs(q["the layer, overlapped"] - 16384 / (per_node / 8) / 61 * 1e3) < 1e-6, (key, q)
    m = {k: r["profile_ms"] for k, r in t.items()}
    assert abs(m["all compute kernels"] - m["attention core"] - m["routed experts"] - m["GEMMs"]
               - m["other kernels"]) < 1e-9, (key, m)
# The first row without overlap, part by part against SGLang's profile of it
# (tbo-breakdown-prefill.png, scaled to 16,384 tokens): nothing overlaps, so
# in the served system the parts add up to the layer, and in moesim the layer
# is the row's iteration over 61 layers and holds at least its parts (the LM
# head besides; the parts are one routing sample, the layer the run's mean).
serial = {r["part"].split(" (")[0]: r for r in serving["prefill_layer_without_overlap"]}
assert len(serial) == 8, serial.keys()
m = {k: r["profile_ms"] for k, r in serial.items()}
q = {k: r["predicted_ms"] for k, r in serial.items()}
assert abs(m["all compute kernels"] + m["dispatch"] + m["combine"]
           - m["the layer, nothing overlapped"]) < 0.2, m
assert abs(q["all compute kernels"] - q["attention core"] - q["routed experts"] - q["GEMMs"]
           - q["other kernels"]) < 1e-9, q
serial_row = rows["prefill without overlap, 8K tokens per GPU, 4K prompts"]["predicted"]
assert abs(q["the layer, nothing overlapped"] - 8192 / (serial_row / 8) / 61 * 2e3) < 1e-6, q
assert q["the layer, nothing overlapped"] > 0.98 * (
    q["all compute kernels"] + q["dispatch"] + q["combine"]), q
# Decode without overlap at 256 requests per GPU against SGLang's profile of
# it (tbo-breakdown-decode.png): nothing overlaps, so in both columns the
# parts add up to the layer; each of moesim's parts within 10% (a regression
# guard: they are within 4% now).
decode = {r["part"].split(" (")[0]: r for r in serving["decode_layer_without_overlap"]}
assert list(decode) == ["compute kernels", "dispatch", "combine", "the layer, nothing overlapped"]
for column, tolerance in (("profile_ms", 0.005), ("predicted_ms", 1e-9)):
    c = {k: r[column] for k, r in decode.items()}
    assert abs(c["compute kernels"] + c["dispatch"] + c["combine"]
               - c["the layer, nothing overlapped"]) < tolerance, (column, c)
for r in decode.values():
    assert abs(r["predicted_ms"] / r["profile_ms"] - 1) < 0.1, r
# The examples' routing against the blog's balancedness chart: its three
# numbers are chosen on all eight points (calibration), each within 10%;
# EPLB helps at every size and balance falls with size without it.
assert serving["routing"].startswith("grouped:"), serving["routing"]
balance = serving["routing_balancedness"]
assert [(b["gpus"], b["eplb"]) for b in balance] == [
    (8, False), (16, False), (32, False), (64, False), (8, True), (16, True), (32, True), (72, True)
], balance
for b in balance:
    assert 0 < b["predicted"] <= 1 and abs(b["predicted"] / b["published"] - 1 - b["error"]) < 1e-12, b
    assert b["role"] == "calibration" and abs(b["error"]) < 0.1, b
without = [b["predicted"] for b in balance if not b["eplb"]]
assert without == sorted(without, reverse=True), without
assert all(w["predicted"] > wo["predicted"] for w, wo in zip(balance[4:7], balance[:3])), balance
PY

# The overhead: a breakdown category when pp > 1, absent with 0, validated.
scenario() {  # scenario <pipeline_pass_overhead_us>
  cat <<JSON
{"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 1},
 "parallel": {"dp": 4, "pp": 2, "ep": 4}, "workload": {"seq_len": 512, "global_batch": 16},
 "options": {"pipeline_pass_overhead_us": $1}}
JSON
}
scenario 500 >"$tmp/on.json"
scenario 0 >"$tmp/off.json"
"$moesim" run "$tmp/on.json" --json >"$tmp/on.out" || { echo "FAIL: run on.json"; fail=1; }
"$moesim" run "$tmp/off.json" --json >"$tmp/off.out" || { echo "FAIL: run off.json"; fail=1; }
python3 - "$tmp/on.out" "$tmp/off.out" <<'PY' || fail=1
import json, sys
on, off = (json.load(open(p)) for p in sys.argv[1:3])
assert off["breakdown"]["framework_overhead_s"] == 0
# 16 sequences over dp 4: 4 micro-batches, 2 passes each, 0.5 ms per pass.
assert abs(on["breakdown"]["framework_overhead_s"] - 4 * 2 * 500e-6) < 1e-9, on["breakdown"]
assert on["step_time_s"] > off["step_time_s"]
assert on["scenario"]["options"]["pipeline_pass_overhead_us"] == 500
PY
scenario -1 >"$tmp/bad.json"
"$moesim" run "$tmp/bad.json" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" != 2 ] || [ "$(wc -l <"$tmp/err")" != 1 ] ||
   ! grep -q "options.pipeline_pass_overhead_us" "$tmp/err"; then
  echo "FAIL: negative overhead: exit $rc"; cat "$tmp/err"; fail=1
fi

# The number of scenarios simulated at once is checked before any runs: out
# of range names the range (an unknown --jobs would name the flag too).
for jobs in 0 257 two; do
  "$moesim" validate published --jobs "$jobs" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  expected="--jobs"
  [ "$jobs" = two ] || expected="--jobs: expected an integer in \[1, 256\]"
  if [ "$rc" != 2 ] || [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q -- "$expected" "$tmp/err"; then
    echo "FAIL: validate published --jobs $jobs: exit $rc"; cat "$tmp/err"; fail=1
  fi
done

# Large routing plans are generated on several threads; the report must still
# be byte-identical run to run (Qwen3 on 256 GPUs, a short batch).
cat >"$tmp/big.json" <<'JSON'
{"model": "qwen3-235b-a22b", "cluster": {"preset": "dgx-h100", "nodes": 32},
 "parallel": {"dp": 16, "tp": 2, "pp": 8, "ep": 32, "sequence_parallel": true,
              "micro_batch_size": 1, "pipeline_schedule": "interleaved", "virtual_stages": 4,
              "account_for_embedding_and_loss": true, "recompute": "selective",
              "a2a_algo": "hierarchical"},
 "workload": {"seq_len": 4096, "global_batch": 128},
 "routing": {"generator": "zipf:0.2", "seed": 3}, "gating": {"capacity_factor": "dropless"}}
JSON
"$moesim" run "$tmp/big.json" -o "$tmp/big1.json" >/dev/null || fail=1
"$moesim" run "$tmp/big.json" -o "$tmp/big2.json" >/dev/null || fail=1
cmp -s "$tmp/big1.json" "$tmp/big2.json" || { echo "FAIL: threaded routing plan not deterministic"; fail=1; }

[ "$fail" = 0 ] && echo "validate published: ok"
exit $fail
