#!/usr/bin/env bash
# `mpirun -n 2 moesim search` (training and --mode inference) shares the
# simulations between ranks, gathers the outcomes on rank 0, and prints and
# writes exactly what a single-process run does; an error ends every rank.
set -u
moesim=$1
mpirun=${2:-mpirun}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run_mpi() { timeout 300 "$mpirun" -n 2 --oversubscribe --allow-run-as-root "$moesim" "$@"; }

compare() {  # name, then the search's arguments
  local name=$1
  shift
  "$moesim" search "$@" -o "$tmp/$name.one.json" >"$tmp/$name.one.txt" 2>/dev/null ||
    { echo "FAIL: $name: single-process search"; exit 1; }
  run_mpi search "$@" -j 1 -o "$tmp/$name.two.json" >"$tmp/$name.two.txt" 2>"$tmp/$name.err" ||
    { echo "FAIL: $name: mpirun search"; cat "$tmp/$name.err"; exit 1; }
  grep -q "search rank 1: simulating" "$tmp/$name.err" ||
    { echo "FAIL: $name: rank 1 simulated nothing"; cat "$tmp/$name.err"; exit 1; }
  cmp "$tmp/$name.one.json" "$tmp/$name.two.json" || { echo "FAIL: $name: JSON differs"; exit 1; }
  cmp "$tmp/$name.one.json.csv" "$tmp/$name.two.json.csv" || { echo "FAIL: $name: CSV differs"; exit 1; }
  cmp "$tmp/$name.one.txt" "$tmp/$name.two.txt" || { echo "FAIL: $name: table differs"; exit 1; }
  echo "mpi search $name: identical to the single-process run"
}

compare training --model tiny-moe --cluster dgx-h100 --gpus 16 --global-batch 64 --seq 1024 \
  --virtual-stages 1,2
compare inference --mode inference --model mixtral-8x7b --cluster dgx-h100 --gpus 8 \
  --requests-rate 40 --requests 300 --slo-tpot-ms 50 --slo-ttft-ms 2000

# A bad flag fails on every rank with the usual message and exit 2.
run_mpi search --model tiny-moe --cluster dgx-h100 --gpus 16 --global-batch 64 \
  --routing nosuch:1 >"$tmp/out" 2>&1
rc=$?
[ "$rc" -ne 124 ] || { echo "FAIL: a bad flag left the run hanging"; exit 1; }
[ "$rc" -ne 0 ] || { echo "FAIL: a bad flag exited 0"; exit 1; }
grep -q "moesim search: error: --routing: .*(rank [01])" "$tmp/out" ||
  { echo "FAIL: the error does not name the flag and rank"; cat "$tmp/out"; exit 1; }
echo "mpi search: an error ends the run"
