#!/usr/bin/env bash
# `moesim calibrate --device cuda` end to end without a GPU, through the fake
# CUDA module (fake_cuda_module.cpp: closed-form kernel times): the loader's
# errors are one line and exit 2; the table holds the fake's times as
# throughputs per dtype, with units and what was not measured; a scenario
# reads it as options.compute_calibration.
# Usage: cuda_calibrate_cli.sh MOESIM FAKE_MODULE SOURCE_DIR
set -u
moesim=$1
fake=$2
src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# expect_error NAME PATTERN ENV...: calibrate exits 2 with one line matching
# PATTERN and writes no file.
expect_error() {
  local name=$1 pattern=$2
  shift 2
  env "$@" "$moesim" calibrate --device cuda --smoke -o "$tmp/none.json" >/dev/null 2>"$tmp/err"
  local rc=$?
  if [ $rc != 2 ] || [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q -- "$pattern" "$tmp/err" ||
    [ -e "$tmp/none.json" ]; then
    echo "FAIL: $name (exit $rc)"
    cat "$tmp/err"
    fail=1
  fi
}
expect_error "absent module" "error: cuda: the CUDA module $tmp/absent.so is not there" \
  MOESIM_CUDA_MODULE="$tmp/absent.so"
expect_error "old API version" "error: cuda: .* speaks CUDA module API version 1; this moesim needs" \
  MOESIM_CUDA_MODULE="$fake" MOESIM_FAKE_CUDA_API_VERSION=1
expect_error "no device" "error: cuda: no usable GPU: no CUDA device (fake module)$" \
  MOESIM_CUDA_MODULE="$fake" MOESIM_FAKE_CUDA_NO_DEVICE=1
MOESIM_CUDA_MODULE="$fake" "$moesim" calibrate --device cuda --threads 2 >/dev/null 2>"$tmp/err"
[ $? = 2 ] && grep -q -- "--threads: only for --device cpu" "$tmp/err" ||
  { echo "FAIL: --threads with cuda"; fail=1; }
"$moesim" calibrate --help | grep -q "cuda (the first GPU" || { echo "FAIL: --help"; fail=1; }

MOESIM_CUDA_MODULE="$fake" "$moesim" calibrate --device cuda --quick -o "$tmp/calib.json" \
  2>"$tmp/progress" || { echo "FAIL: calibrate --device cuda"; cat "$tmp/progress"; exit 1; }
grep -q "gemm bf16: 702 points x 3 interleaved rounds" "$tmp/progress" ||
  { echo "FAIL: progress lines"; cat "$tmp/progress"; fail=1; }
python3 - "$tmp/calib.json" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "moesim-calibration" and d["device"] == "cuda", d["device"]
assert d["machine"]["gpu"] == "Fake GPU (moesim test module)", d["machine"]
assert d["machine"]["compute_capability"] == "8.0" and d["machine"]["runtime"] == "CUDA runtime 13.0"
rates = {"bf16": 400e12, "tf32": 200e12, "fp32": 50e12}
tables = [d["gemm"]] + d["gemm_by_dtype"]
assert [t["dtype"] for t in tables] == ["bf16", "tf32", "fp32"], [t["dtype"] for t in tables]
for t in tables:  # every point: 2mnk / (2mnk / rate + 2 us)
    for i, m in enumerate(t["m"]):
        for j, n in enumerate(t["n"]):
            for l, k in enumerate(t["k"]):
                f = 2.0 * m * n * k
                want = f / (f / rates[t["dtype"]] + 2e-6)
                assert abs(t["flops_per_s"][i][j][l] / want - 1) < 1e-9, (t["dtype"], m, n, k)
assert d["not_measured"]["fp8 gemm"].endswith("compute capability 8.9 or later; this GPU has 8.0")
assert "attention" in d["not_measured"]
assert d["units"]["memory_bound.bytes"] == "bytes read + bytes written per call"
mem = d["memory_bound"]
for b, bw in zip(mem["bytes"], mem["bytes_per_s"]):
    assert abs(bw / (b / (b / 2e12 + 2e-6)) - 1) < 1e-9, b
assert abs(d["launch_overhead_s"] / 3e-6 - 1) < 1e-9
for p in d["grouped_gemm"]["points"]:  # the fake's grouped kernel: twice a GEMM's efficiency
    f = 2.0 * p["groups"] * p["m_per_group"] * p["n"] * p["k"]
    assert abs(p["seconds"] / (f / 800e12 + 2e-6) - 1) < 1e-9, p
    assert p["sum_of_gemms_over_measured"] > 1, p
t = d["timing"]
assert t["statistic"] == "minimum over interleaved rounds" and t["gemm_rounds"] == 3
assert t["gemm_spread"]["bf16"] == {"median": 0.0, "max": 0.0}, t["gemm_spread"]
PY

# A scenario priced from the table: runs, names it, and differs from the roofline.
python3 - "$src/tests/fuzz/corpus/scenario/tiny-options.json" "$tmp" <<'PY' || fail=1
import json, sys
s = json.load(open(sys.argv[1]))
s["options"]["compute_calibration"] = sys.argv[2] + "/calib.json"
json.dump(s, open(sys.argv[2] + "/scenario.json", "w"))
s["options"]["compute_calibration"] = ""
json.dump(s, open(sys.argv[2] + "/roofline.json", "w"))
PY
"$moesim" run "$tmp/scenario.json" --json >"$tmp/report.json" 2>"$tmp/err" &&
  "$moesim" run "$tmp/roofline.json" --json >"$tmp/roofline_report.json" 2>>"$tmp/err" ||
  { echo "FAIL: run with the GPU calibration"; cat "$tmp/err"; fail=1; }
python3 - "$tmp" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1] + "/report.json"))
r = json.load(open(sys.argv[1] + "/roofline_report.json"))
assert d["scenario"]["options"]["compute_calibration"].endswith("/calib.json")
assert d["step_time_s"] > 0 and d["step_time_s"] != r["step_time_s"], (d["step_time_s"], r["step_time_s"])
PY
exit $fail
