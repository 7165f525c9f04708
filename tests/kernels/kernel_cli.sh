#!/usr/bin/env bash
# End-to-end: calibrate (smoke grid) -> validate kernel reads it and reports
# predicted/measured/error per case and the summary fields; bad input exits 2.
set -u
moesim=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$moesim" calibrate --device cpu --smoke --quiet -o "$tmp/calib.json" || { echo "FAIL: calibrate"; exit 1; }
python3 - "$tmp/calib.json" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "moesim-calibration" and d["device"] == "cpu", d.keys()
g = d["gemm"]
assert len(g["flops_per_s"]) == len(g["m"]) and all(x > 0 for p in g["flops_per_s"] for r in p for x in r)
assert d["peak_gemm_flops_per_s"] > 0 and len(d["memory_bound"]["bytes"]) >= 1
t = d["timing"]
assert t["statistic"] == "minimum over interleaved rounds" and t["gemm_rounds"] >= 1
assert 0 <= t["gemm_spread"]["median"] <= t["gemm_spread"]["max"]
PY
"$moesim" validate kernel --calib "$tmp/calib.json" --cases 2 --reps 2 --json >"$tmp/val.json" 2>/dev/null \
  || { echo "FAIL: validate kernel"; fail=1; }
python3 - "$tmp/val.json" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["cases"]) == 2
for c in d["cases"]:
    assert c["predicted_s"] > 0 and c["measured_s"] > 0
    assert abs(c["error"] - (c["predicted_s"] - c["measured_s"]) / c["measured_s"]) < 1e-12
assert d["max_abs_error"] == max(abs(c["error"]) for c in d["cases"])
assert 0 <= d["median_abs_error"] <= d["max_abs_error"]
for c in d["cases"]:  # measured = fastest repetition; spread = median / fastest - 1
    assert c["measured_s"] <= c["measured_median_s"]
    assert abs(c["spread"] - (c["measured_median_s"] / c["measured_s"] - 1)) < 1e-12
assert d["spread"]["max"] == max(c["spread"] for c in d["cases"])
PY
"$moesim" validate kernel --json >/dev/null 2>"$tmp/err"
[ $? = 2 ] && grep -q -- "--calib is required" "$tmp/err" || { echo "FAIL: missing --calib"; fail=1; }
echo '{"format": "moesim-calibration"}' >"$tmp/bad.json"
"$moesim" validate kernel --calib "$tmp/bad.json" >/dev/null 2>"$tmp/err"
[ $? = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] || { echo "FAIL: bad calibration"; cat "$tmp/err"; fail=1; }
"$moesim" calibrate --device gpu >/dev/null 2>"$tmp/err"
[ $? = 2 ] || { echo "FAIL: --device gpu accepted"; fail=1; }
"$moesim" bench kernel --help >/dev/null || { echo "FAIL: bench kernel --help"; fail=1; }
exit $fail
