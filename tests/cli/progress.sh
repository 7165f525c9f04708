#!/usr/bin/env bash
# Progress output suits where stderr goes (issue 15): into a file, about one
# line per 10% of a batch (search used to write one per point); on a
# terminal, one line rewritten in place.
set -u
moesim=$1
source "$(dirname "$0")/lib.sh"

search=("$moesim" search --model tiny-moe --cluster dgx-h100 --gpus 8 --global-batch 32 --seq 512
        --json)
start=$(date +%s)
"${search[@]}" >/dev/null 2>"$tmp/log" || { echo "FAIL: search"; fail=1; }
elapsed=$(($(date +%s) - start))
for phase in "search: checking" "search: simulating"; do
  lines=$(grep -c "^$phase: " "$tmp/log")
  # 10 tenths, plus one line per 10 s of a slow run.
  [ "$lines" -ge 2 ] && [ "$lines" -le $((10 + elapsed / 10 + 1)) ] ||
    { echo "FAIL: $phase: $lines progress lines in a log"; cat "$tmp/log"; fail=1; }
  grep "^$phase: " "$tmp/log" | tail -1 | grep -q -E ": ([0-9]+)/\1 done" ||
    { echo "FAIL: $phase: the last line is not the total"; fail=1; }
done

# On a terminal: carriage returns within one line per phase.
python3 - "${search[@]}" <<'PY' || fail=1
import os, subprocess, sys
master, slave = os.openpty()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
out = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:  # EIO once the child has closed the terminal
        break
    if not chunk:
        break
    out += chunk
p.wait()
text = out.decode().replace("\r\n", "\n")  # the terminal's own newline translation
lines = [l for l in text.split("\n") if l.strip()]
if p.returncode != 0 or len(lines) != 2 or text.count("\r") < 2:
    print("FAIL: terminal progress:", repr(text[-300:]))
    sys.exit(1)
PY
# moesim run: a run over within two seconds prints its report alone; a longer
# one says how far it is, its last line the total.
serving() {
  cat <<EOF
{"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 1, "node": {"gpus_per_node": 1}},
 "workload": {"mode": "inference"}, "parallel": {"tp": 1},
 "requests": {"count": $1, "arrival": "closed", "concurrency": 64,
              "input_tokens": {"dist": "uniform", "min": 16, "max": 128},
              "output_tokens": {"dist": "uniform", "min": 8, "max": 64}, "seed": 1}}
EOF
}
serving 200 >"$tmp/quick.json"
"$moesim" run "$tmp/quick.json" >/dev/null 2>"$tmp/quick.err" || { echo "FAIL: quick run"; fail=1; }
[ ! -s "$tmp/quick.err" ] || { echo "FAIL: a quick run printed progress"; cat "$tmp/quick.err"; fail=1; }
serving 400000 >"$tmp/slow.json"
start=$(date +%s%N)
"$moesim" run "$tmp/slow.json" >/dev/null 2>"$tmp/slow.err" || { echo "FAIL: slow run"; fail=1; }
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
lines=$(grep -c "^run: requests finished: " "$tmp/slow.err")
if [ "$elapsed_ms" -ge 3000 ]; then
  [ "$lines" -ge 1 ] && [ "$lines" -le 12 ] && tail -1 "$tmp/slow.err" | grep -q ": 400000/400000 done" ||
    { echo "FAIL: run progress after $elapsed_ms ms:"; cat "$tmp/slow.err"; fail=1; }
elif [ "$elapsed_ms" -lt 2000 ]; then
  [ "$lines" = 0 ] || { echo "FAIL: progress within $elapsed_ms ms"; cat "$tmp/slow.err"; fail=1; }
fi

# Work of one unit shows no progress: "1/1 done" says nothing the output
# does not (a one-step training run under the sanitizers printed it before
# its one-line error).
cat >"$tmp/one.json" <<EOF
{"base": $(serving 20), "axes": {"requests.concurrency": [4]}}
EOF
"$moesim" sweep "$tmp/one.json" -o "$tmp/one" >/dev/null 2>"$tmp/one.err" ||
  { echo "FAIL: one-point sweep"; cat "$tmp/one.err"; fail=1; }
! grep -q " done" "$tmp/one.err" ||
  { echo "FAIL: a one-point sweep printed progress"; cat "$tmp/one.err"; fail=1; }

[ $fail = 0 ] && echo "progress: all checks passed"
exit $fail
