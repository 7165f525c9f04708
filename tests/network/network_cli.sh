#!/usr/bin/env bash
# moesim presets / collective / bench network as a user runs them.
set -u
moesim=$1
source "$(dirname "$0")/../cli/lib.sh"

expect 0 - "$moesim" presets --json
for p in h100-sxm a100-sxm-80gb h800 h200 b200 mi300x dgx-h100 dgx-a100 hgx-h800 dgx-h200 dgx-b200 mi300x-8; do
  grep -q "\"$p\"" "$tmp/out" || { echo "FAIL: preset $p missing"; fail=1; }
done
expect 0 - "$moesim" collective --cluster dgx-h100 --nodes 2 --op all_reduce --bytes 1e8 --ranks 16 --json
[ "$(json '"time_s" in d and "algbw_gbps" in d and "busbw_gbps" in d')" = True ] ||
  { echo "FAIL: collective JSON fields"; fail=1; }
expect 0 - "$moesim" collective --cluster dgx-h100 --op send_recv --bytes 1e6 --ranks 0,5
expect 2 "unknown cluster preset 'dgx-h900'" "$moesim" collective --cluster dgx-h900 --op all_reduce --bytes 1 --ranks 2
echo '{"preset": "dgx-h100", "node": {"nic_gbit_per_s": -400}}' >"$tmp/neg.json"
expect 2 "node.nic_gbit_per_s" "$moesim" collective --cluster "$tmp/neg.json" --op all_reduce --bytes 1 --ranks 2
expect 2 "rank 99 is outside" "$moesim" collective --cluster dgx-h100 --op all_reduce --bytes 1 --ranks 0,99
echo '[[0, 1], [1, 0], [2, 2]]' >"$tmp/counts.json"
expect 2 "expected a 2x2 matrix" "$moesim" collective --cluster dgx-h100 --op all_to_all --ranks 2 --counts "$tmp/counts.json"
expect 2 "unknown operation" "$moesim" collective --cluster dgx-h100 --op broadcast --bytes 1 --ranks 2
expect 0 - "$moesim" bench network --gpus 64 --bytes-per-gpu 1048576 --json
[ "$(json 'd["flows"] > 0 and d["bytes_delivered"] > 0')" = True ] || { echo "FAIL: bench network"; fail=1; }
[ $fail = 0 ] && echo "network cli: all checks passed"
exit $fail
