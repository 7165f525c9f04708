#!/usr/bin/env bash
# `mpirun -n 2 moesim sweep` splits the points between ranks, gathers them on
# rank 0, and writes exactly what a single-process threaded run writes.
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
