#!/usr/bin/env bash
# `moesim validate gpu-calibration`: the JSON report lists every shipped point with
# its roofline prediction and error, the summary matches the rows, and bad input
# (unknown GPU, GPU without tables, broken table file) is a one-line error, exit 2.
set -u
moesim=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$moesim" validate gpu-calibration --json >"$tmp/check.json" || { echo "FAIL: validate gpu-calibration"; exit 1; }
python3 - "$tmp/check.json" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
# 35 FlashAttention-3 forward points and Table 9's four cuDNN MLA ones among them.
assert d["gpu"] == "h100-sxm" and len(d["points"]) == 83, len(d["points"])
for p in d["points"]:
    assert p["published_tflops"] > 0 and p["roofline_tflops"] > 0
    assert abs(p["roofline_error"] - (p["roofline_tflops"] / p["published_tflops"] - 1)) < 1e-12
errs = sorted(abs(p["roofline_error"]) for p in d["points"])
n = len(errs)
median = errs[n // 2] if n % 2 else 0.5 * (errs[n // 2 - 1] + errs[n // 2])
assert d["max_abs_error"] == errs[-1] and abs(d["median_abs_error"] - median) < 1e-15
kinds = {p["kind"] for p in d["points"]}
assert kinds == {"gemm", "grouped_gemm", "wgrad_gemm", "grouped_wgrad_gemm", "attention",
                 "mla_decode"}, kinds
PY
"$moesim" validate gpu-calibration --markdown | grep -q '^| gemm | m=64 n=2112 k=7168 | fp8 | deepgemm' \
  || { echo "FAIL: markdown table"; fail=1; }
"$moesim" validate gpu-calibration --markdown |
  grep -q '^| grouped_wgrad_gemm | 4x m=7168 n=4096 k=8192 (k_grouped) | fp8 | deepgemm-wgrad' \
  || { echo "FAIL: markdown wgrad row"; fail=1; }
"$moesim" validate gpu-calibration --markdown |
  grep -q '^| attention | seq=4096 head_dim=192/128 causal backward | bf16 | megatron-core-moe-report' \
  || { echo "FAIL: markdown backward attention row"; fail=1; }
expect_error() {  # expect_error <grep pattern> <args...>
  local pattern=$1; shift
  "$moesim" validate gpu-calibration "$@" >/dev/null 2>"$tmp/err"
  local rc=$?
  if [ $rc != 2 ] || [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q -- "$pattern" "$tmp/err"; then
    echo "FAIL: $* -> rc $rc: $(cat "$tmp/err")"; fail=1
  fi
}
expect_error "no built-in GPU calibration" --gpu a100-sxm-80gb
expect_error "unknown gpu preset" --gpu nonesuch
echo '{"format": "moesim-gpu-calibration", "version": 1, "applies_to": ["h100-sxm"],
  "sources": {"s": {"url": "u", "measured_on": "H100"}},
  "gemm": [{"source": "t", "dtype": "fp8", "m": 1, "n": 1, "k": 1, "tflops": 1}]}' >"$tmp/bad.json"
expect_error "gemm\[0\].source: unknown source 't'" --calib "$tmp/bad.json"
exit $fail
