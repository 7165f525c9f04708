#!/usr/bin/env bash
# Issue 15: every reproducer in tests/data/bad/ exits 2 with one line naming
# the field, line or byte offset, within 60 s and 2 GB (tests/cli/limits.py);
# outputs never replace devices, FIFOs or create folders.
set -u
moesim=$1
bad=$2
source "$(dirname "$0")/lib.sh"
limits="python3 $(dirname "$0")/limits.py"

# bad_file <exit> <pattern> <command...>: expect, under the time and memory limits.
bad_file() {
  local want=$1 pat=$2
  shift 2
  expect "$want" "$pat" $limits "$@"
}

# JSON loading (scenario files and the values inside them).
bad_file 2 "deep-nesting.json: byte 512: invalid JSON: nested deeper than 512 levels" \
  "$moesim" run "$bad/deep-nesting.json"
bad_file 2 "number-overflow.json: byte [0-9]*: invalid JSON: number overflow parsing '1e99999'" \
  "$moesim" run "$bad/number-overflow.json"
bad_file 2 "duplicate-key.json: parallel.dp: duplicate key" "$moesim" run "$bad/duplicate-key.json"
bad_file 2 "sweep-deep-base.json: byte [0-9]*: invalid JSON: nested deeper than 512 levels" \
  "$moesim" sweep "$bad/sweep-deep-base.json" -o "$tmp/deep-sweep"
bad_file 2 "sweep-duplicate-key.json: axes: duplicate key" \
  "$moesim" sweep "$bad/sweep-duplicate-key.json" -o "$tmp/dup-sweep"
bad_file 2 'sweep-mode-object.json: mode: expected "product" or "zip", got {"parallel.ep":\[2,4\]}' \
  "$moesim" sweep "$bad/sweep-mode-object.json" -o "$tmp/mode-sweep"
bad_file 2 "sweep-base-number.json: base: expected a scenario object or a path, got number" \
  "$moesim" sweep "$bad/sweep-base-number.json" -o "$tmp/base-sweep"
bad_file 2 "cluster.gpu.peak_tflops.bf16: expected 0 (not supported) or a number in \[1, 100000\]" \
  "$moesim" run "$bad/gpu-peak-tflops-1e-300.json"
bad_file 2 "cluster.node.intra_gb_per_s: expected a number in \[1, 100000\], got 0.001" \
  "$moesim" run "$bad/cluster-intra-gb-per-s-1e-3.json"
bad_file 2 "model.routed_experts: expected an integer in \[1, 65535\], got 0" \
  "$moesim" run "$bad/model-routed-experts-0.json"
bad_file 2 "model.top_k: expected an integer in \[1, 64\], got 100" \
  "$moesim" run "$bad/model-top-k-100.json"
bad_file 2 "/dev/zero: larger than 67108864 bytes (the limit for this input)" "$moesim" run /dev/zero
# A device limit whose ranks hold fewer expert slots than top-k (training and
# serving scenarios).
bad_file 2 "gating.device_limit: 1 x 1 expert slots per EP rank cannot hold a token's 2 experts; raise it to at least 2" \
  "$moesim" run "$bad/gating-device-limit-too-small.json"
bad_file 2 "gating.device_limit: 1 x 4 expert slots per EP rank cannot hold a token's 8 experts; raise it to at least 2" \
  "$moesim" run "$bad/serving-device-limit-too-small.json"

# .moetrace reading: trace stats, and replay in a scenario.
trace_error() {  # trace_error <file> <pattern>
  bad_file 2 "$1: byte [0-9]*: .*$2" "$moesim" trace stats "$bad/$1"
}
trace_error trace-step-2pow31.moetrace "block for step 2147483648, but the header declares 2 steps"
trace_error trace-v1-step-2pow31.moetrace "block for step 2147483648, but the header declares 2"
trace_error trace-layer-2pow31.moetrace "block for MoE layer 2147483648, but the header declares 2"
trace_error trace-tokens-2pow30.moetrace "block of 1073741824 tokens (a block holds 1 to 8388608"
trace_error trace-tokens-beyond-file.moetrace "truncated or corrupt: a block of 1000000 tokens needs"
trace_error trace-steps-negative.moetrace "header.steps: expected an integer in \[1, 1000000\], got -1"
trace_error trace-steps-2pow31.moetrace "header.steps: expected an integer in \[1, 1000000\], got 2147483648"
trace_error trace-blocks-beyond-file.moetrace "truncated or corrupt: the header declares 1000000 steps"
trace_error trace-expert-layers.moetrace "experts x moe_layers = 65535 x 10000 exceeds the limit"
trace_error trace-header-only.moetrace "truncated or corrupt: the header declares 2 steps x 2"
trace_error trace-cut-at-block.moetrace "truncated file: it ends after 2 of the header's 4 blocks"
trace_error trace-repeated-last-block.moetrace "66 bytes after the header's last block (of 4)"
trace_error trace-repeated-middle-block.moetrace \
  "block for step 0 layer 1 where step 1 layer 0 was expected"
trace_error trace-routed-twice.moetrace "token 0 is routed twice to expert 3"
trace_error trace-weight-nan.moetrace "gate weight nan is not in \[0, 1\]"
trace_error trace-block-header-unchecksummed.moetrace "block checksum mismatch"
trace_error trace-header-edited.moetrace "header checksum mismatch"
trace_error trace-version-3.moetrace "trace format version 3 (this moesim reads versions 1 and 2)"
replay='{"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 1},
  "parallel": {"dp": 8, "ep": 8}, "workload": {"seq_len": 64, "global_batch": 8},
  "routing": {"trace": "TRACE"}}'
for f in trace-step-2pow31 trace-layer-2pow31 trace-tokens-2pow30 trace-repeated-middle-block; do
  echo "${replay/TRACE/$bad/$f.moetrace}" >"$tmp/replay.json"
  bad_file 2 "$f.moetrace: byte" "$moesim" run "$tmp/replay.json"
done
mkfifo "$tmp/trace.fifo"
bad_file 2 "trace.fifo: not a regular file" "$moesim" trace stats "$tmp/trace.fifo"
bad_file 2 "/dev/zero: not a regular file" "$moesim" trace import /dev/zero -o "$tmp/z.moetrace"

# JSONL import: errors name the line, its byte offset and the field; no output is left.
import_error() {  # import_error <file> <pattern> [options]
  local file=$1 pat=$2
  shift 2
  bad_file 2 "$pat" "$moesim" trace import "$bad/$file" -o "$tmp/imported.moetrace" "$@"
  [ -e "$tmp/imported.moetrace" ] && { echo "FAIL: import of $file left a trace"; fail=1; }
}
import_error import-short-weights.jsonl \
  "import-short-weights.jsonl: line 1 (byte 0): weights\[1\]: expected 2 gate weights, got \[0.5\]"
import_error import-step-1e9.jsonl "line 1 (byte 0): step: expected an integer in \[0, 999999\]"
import_error import-routed-twice.jsonl "experts\[1\]\[1\]: the token is routed twice to expert 2"
import_error import-missing-pair.jsonl "no line for step 1 layer 1"
import_error import-duplicate-pair.jsonl "line 3: step 0 layer 0 is already given on line 1"
import_error import-number-overflow.jsonl "line 1 (byte 0): JSON: byte [0-9]*: invalid JSON: number overflow"
import_error import-duplicate-key.jsonl "line 1 (byte 0): JSON: layer: duplicate key"
import_error import-top-k-mismatch.jsonl "experts\[1\]: expected 2 expert ids"
import_error deep-nesting.json "line 1 (byte 0): JSON: byte 512: invalid JSON: nested deeper than 512"
good=$(dirname "$0")/../fuzz/corpus/jsonl_import/two-layers.jsonl
bad_file 2 "--experts: expected an integer in \[1, 65535\], got 0" \
  "$moesim" trace import "$good" -o "$tmp/i.moetrace" --experts 0
bad_file 2 "--experts: expected an integer in \[1, 65535\], got -1" \
  "$moesim" trace import "$good" -o "$tmp/i.moetrace" --experts -1
bad_file 2 "--experts: not allowed with --model" \
  "$moesim" trace import "$good" -o "$tmp/i.moetrace" --experts 8 --model tiny-moe
bad_file 2 "line 2 (byte 110): experts\[1\]\[0\]: expected an integer in \[0, 3\], got 5" \
  "$moesim" trace import "$good" -o "$tmp/i.moetrace" --experts 4
echo '{"step": 0, "layer": 4, "experts": [[1, 3]]}' >"$tmp/layer4.jsonl"
bad_file 2 "layer: expected an integer in \[0, 3\], got 4" \
  "$moesim" trace import "$tmp/layer4.jsonl" -o "$tmp/i.moetrace" --model tiny-moe
bad_file 0 - "$moesim" trace import "$good" -o "$tmp/i.moetrace" --model tiny-moe
bad_file 0 - "$moesim" trace stats "$tmp/i.moetrace" --json
[ "$(json 'd["trace"]["steps"] * d["trace"]["moe_layers"]')" = 2 ] ||
  { echo "FAIL: imported trace shape"; fail=1; }

# trace generate: size-like options are bounded, with the limit in the message.
bad_file 2 "--steps: expected an integer in \[1, 1000000\] (at most 1000000 steps" \
  "$moesim" trace generate --model tiny-moe --tokens 10 --steps 1000000000 -o "$tmp/g.moetrace"
bad_file 2 "--tokens: expected an integer in \[1, 8388608\]" \
  "$moesim" trace generate --model tiny-moe --tokens 100000000 -o "$tmp/g.moetrace"
bad_file 2 "--ranks: expected an integer in \[1, min(65535, tokens)\], got 11" \
  "$moesim" trace generate --model tiny-moe --tokens 10 --ranks 11 -o "$tmp/g.moetrace"
[ -e "$tmp/g.moetrace" ] && { echo "FAIL: refused generate left a trace"; fail=1; }

# Outputs: devices and FIFOs are written through, never replaced; a failed
# write is exit 2 with the reason; missing folders are not created.
if [ -w /dev/full ]; then
  bad_file 2 "/dev/full: write failed: No space left on device" "$moesim" run -o /dev/full
  bad_file 2 "/dev/full: write failed: No space left on device" \
    "$moesim" trace generate --model tiny-moe --tokens 10 -o /dev/full
  [ -c /dev/full ] || { echo "FAIL: /dev/full is no longer a character device"; fail=1; }
fi
if [ -c /dev/null ]; then  # (other programs on a shared machine may have replaced it)
  bad_file 0 - "$moesim" run -o /dev/null
  [ -c /dev/null ] || { echo "FAIL: /dev/null is no longer a character device"; fail=1; }
fi
for cmd in "run" "trace generate --model tiny-moe --tokens 10"; do
  rm -f "$tmp/out.fifo" "$tmp/from-fifo"
  mkfifo "$tmp/out.fifo"
  timeout 60 cat "$tmp/out.fifo" >"$tmp/from-fifo" &
  reader=$!
  # shellcheck disable=SC2086
  bad_file 0 - "$moesim" $cmd -o "$tmp/out.fifo"
  wait $reader
  [ -p "$tmp/out.fifo" ] || { echo "FAIL: $cmd -o FIFO replaced the FIFO"; fail=1; }
  [ -s "$tmp/from-fifo" ] || { echo "FAIL: $cmd -o FIFO: the reader got nothing"; fail=1; }
done
python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$tmp/from-fifo" 2>/dev/null ||
  head -c 8 "$tmp/from-fifo" | grep -q MOETRACE || { echo "FAIL: FIFO content"; fail=1; }
bad_file 2 "cannot write: folder '$tmp/missing' does not exist" \
  "$moesim" run -o "$tmp/missing/report.json"
bad_file 2 "cannot write: folder '$tmp/missing' does not exist" \
  "$moesim" trace generate --model tiny-moe --tokens 10 -o "$tmp/missing/t.moetrace"
[ -e "$tmp/missing" ] && { echo "FAIL: -o created a folder"; fail=1; }
ls "$tmp" | grep -q '\.tmp\.' && { echo "FAIL: a temporary file was left behind"; fail=1; }

[ $fail = 0 ] && echo "bad inputs: all checks passed"
exit $fail
