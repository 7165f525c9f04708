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

check "default scenario" 0 "$moesim" run -o "$tmp/a/report.json"
check "default scenario again" 0 "$moesim" run -o "$tmp/b.json"
cmp -s "$tmp/a/report.json" "$tmp/b.json" || { echo "FAIL: reports differ between runs"; fail=1; }
ls "$tmp/a" | grep -q tmp && { echo "FAIL: temp file left behind"; fail=1; }
check "bench engine" 0 "$moesim" bench engine --events 20000 --pending 1000 --json
grep -q '"events_per_second"' "$tmp/out" || { echo "FAIL: bench engine JSON"; fail=1; }

[ $fail = 0 ] && echo "cli basics: all checks passed"
exit $fail
