#!/usr/bin/env bash
# Size-like inputs have limits the program can hold, refused with one line
# naming the field or option and exit 2 (issue #15's reproducers).
set -u
moesim=$1
. "$(dirname "$0")/lib.sh"

# workload.global_batch 262,144: a step of ~1.9e8 tasks, over the default limit.
cat >"$tmp/big.json" <<'JSON'
{"model": "mixtral-8x7b", "cluster": {"preset": "dgx-h100", "nodes": 2},
 "parallel": {"dp": 8, "pp": 2, "ep": 8}, "workload": {"seq_len": 1024, "global_batch": 262144}}
JSON
expect 2 "options.max_tasks_per_step" "$moesim" run "$tmp/big.json"

# A sweep of 10^12 points is refused before expanding; --max-points raises the cap.
python3 - "$tmp/huge.json" <<'PY'
import json, sys
axes = {f"options.seed{i}": list(range(100)) for i in range(6)}
json.dump({"base": {"model": "mixtral-8x7b"}, "axes": axes}, open(sys.argv[1], "w"))
PY
expect 2 "raise --max-points" "$moesim" sweep "$tmp/huge.json" -o "$tmp/out"
cat >"$tmp/small.json" <<'JSON'
{"base": "SCENARIO", "axes": {"gating.capacity_factor": [1.0, 2.0, 3.0]}}
JSON
sed -i "s|SCENARIO|$(realpath "$(dirname "$0")/../../examples/mixtral-8x7b-h100-16gpu.json")|" "$tmp/small.json"
expect 2 "more than 2 points" "$moesim" sweep "$tmp/small.json" -o "$tmp/out" --max-points 2
expect 2 "--max-points" "$moesim" sweep "$tmp/small.json" -o "$tmp/out" --max-points 0

# An output folder that cannot be created (under a regular file, which holds
# even for root) is a user error naming --output.
touch "$tmp/file"
expect 2 - "$moesim" sweep "$tmp/small.json" -o "$tmp/file/results"
grep -q -- "error: --output: cannot use" "$tmp/err" || { echo "FAIL: uncreatable --output"; fail=1; }

# Byte counts that would overflow the clock.
expect 2 "--bytes-per-gpu" "$moesim" bench network --bytes-per-gpu 1e30 --json
expect 2 "--bytes" "$moesim" collective --cluster dgx-h100 --op all_reduce --bytes 1e30 --ranks 8
exit $fail
