#!/usr/bin/env bash
# `mpirun -n 2 moesim sweep` splits the points between ranks, gathers them on
# rank 0, and writes exactly what a single-process threaded run writes; an
# error on one rank ends the whole run (it used to leave the other rank
# waiting in the gather for ever).
set -u
moesim=$1
mpirun=${2:-mpirun}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/sweep.json" <<'JSON'
{"base": {"model": "tiny-moe", "cluster": {"preset": "dgx-h100", "nodes": 1},
 "parallel": {"dp": 8, "ep": 8}, "workload": {"seq_len": 512, "global_batch": 32},
 "routing": {"generator": "zipf:1.0", "seed": 3}, "gating": {"capacity_factor": 1.25}},
 "axes": {"gating.capacity_factor": [1.0, 1.5, "dropless"], "parallel.ep": [2, 4, 8, 3]}}
JSON
"$moesim" sweep "$tmp/sweep.json" -o "$tmp/threads" -j 2 >/dev/null 2>&1 || { echo "FAIL: threaded sweep"; exit 1; }
"$mpirun" -n 2 --oversubscribe --allow-run-as-root "$moesim" sweep "$tmp/sweep.json" -o "$tmp/mpi" -j 1 \
  >"$tmp/out" 2>&1 || { echo "FAIL: mpirun sweep"; cat "$tmp/out"; exit 1; }
grep -q "sweep rank 1" "$tmp/out" || { echo "FAIL: rank 1 did no work"; cat "$tmp/out"; exit 1; }
cmp "$tmp/threads/summary.csv" "$tmp/mpi/summary.csv" || { echo "FAIL: summaries differ"; exit 1; }
diff -r "$tmp/threads/points" "$tmp/mpi/points" || { echo "FAIL: point reports differ"; exit 1; }
echo "mpi sweep: identical to the threaded run"

# Rank 0 cannot write its first point (a folder stands where the report
# goes) while rank 1 finishes its points and waits to send them.
hash=$(sed -n 2p "$tmp/threads/summary.csv" | cut -d, -f2)
mkdir -p "$tmp/blocked/points/$hash.json/sub"
timeout 60 "$mpirun" -n 2 --oversubscribe --allow-run-as-root "$moesim" sweep "$tmp/sweep.json" \
  -o "$tmp/blocked" -j 1 >"$tmp/out" 2>&1
rc=$?
[ "$rc" -ne 124 ] || { echo "FAIL: an error on rank 0 left the run hanging"; exit 1; }
[ "$rc" -ne 0 ] || { echo "FAIL: an error on rank 0 exited 0"; exit 1; }
grep -q "moesim sweep: error: .*$hash.json: is a folder, not a file (rank 0)" "$tmp/out" ||
  { echo "FAIL: the failing rank's error is not shown"; cat "$tmp/out"; exit 1; }
echo "mpi sweep: an error on one rank ends the run"
