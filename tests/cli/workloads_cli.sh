#!/usr/bin/env bash
# moesim models / trace as a user runs them: generate -> stats -> import,
# and one-line errors for bad input.
set -u
moesim=$1
source "$(dirname "$0")/lib.sh"

expect 0 - "$moesim" models --json
[ "$(json 'len(d)')" -ge 13 ] || { echo "FAIL: catalog too small"; fail=1; }
expect 0 - "$moesim" models show deepseek-v3 --json
[ "$(json 'int(d["total_params"] / 1e9)')" = 671 ] || { echo "FAIL: deepseek-v3 total"; fail=1; }
expect 2 "unknown model" "$moesim" models show gpt-5
expect 0 - "$moesim" trace generate --model olmoe-1b-7b --tokens 2000 --steps 2 --gen zipf:1.2 \
  --seed 7 -o "$tmp/t.moetrace"
expect 0 - "$moesim" trace generate --model olmoe-1b-7b --tokens 2000 --steps 2 --gen zipf:1.2 \
  --seed 7 -o "$tmp/u.moetrace"
cmp -s "$tmp/t.moetrace" "$tmp/u.moetrace" || { echo "FAIL: same seed, different trace"; fail=1; }
expect 0 - "$moesim" trace stats "$tmp/t.moetrace" --capacity-factor 1.25 --json
[ "$(json 'd["routings"] == 2*16*2000*8')" = True ] || { echo "FAIL: routings count"; fail=1; }
[ "$(json 'd["max_over_mean_load"] > 2 and 0 < d["drop_rate"] < 1')" = True ] ||
  { echo "FAIL: zipf stats"; fail=1; }
echo "not a trace at all" >"$tmp/text.moetrace"
expect 2 "bad magic" "$moesim" trace stats "$tmp/text.moetrace"
head -c 5000 "$tmp/t.moetrace" >"$tmp/trunc.moetrace"
expect 2 "truncated" "$moesim" trace stats "$tmp/trunc.moetrace"
expect 2 "unknown routing generator" "$moesim" trace generate --model tiny-moe --tokens 10 \
  --gen zipfian:1 -o "$tmp/x.moetrace"
[ -e "$tmp/x.moetrace" ] && { echo "FAIL: failed generate left a file"; fail=1; }
cat >"$tmp/dump.jsonl" <<'JSONL'
{"step": 0, "layer": 0, "experts": [[1, 3], [2, 1], [3, 0]], "weights": [[0.6, 0.4], [0.5, 0.5], [0.9, 0.1]]}
{"step": 0, "layer": 1, "experts": [[0, 1], [1, 2], [3, 2]], "source_rank": [0, 1, 1]}
JSONL
expect 0 - "$moesim" trace import "$tmp/dump.jsonl" -o "$tmp/i.moetrace" --experts 4
expect 0 - "$moesim" trace stats "$tmp/i.moetrace" --json
[ "$(json 'd["routings"]')" = 12 ] || { echo "FAIL: imported routings"; fail=1; }
echo '{"step": 0, "layer": 0, "experts": [[1, 3], [2]]}' >"$tmp/bad.jsonl"
expect 2 "experts\[1\]" "$moesim" trace import "$tmp/bad.jsonl" -o "$tmp/b.moetrace"
[ $fail = 0 ] && echo "workloads cli: all checks passed"
exit $fail
