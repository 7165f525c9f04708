#!/usr/bin/env bash
# Fuzzes every parser of user input with libFuzzer (issue 15): builds the
# tests/fuzz targets with clang under ASan + UBSan (installing Debian's
# clang-14 and libFuzzer when missing) and runs each for SECONDS seconds of
# fresh mutations, seeded with tests/fuzz/corpus/<target>/ and the
# reproducers in tests/data/bad/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   (default 60 s, every target)
#
# Inputs found are kept in $MOESIM_FUZZ_DIR/corpus/<target>/ (default
# build-fuzz/), crashes in $MOESIM_FUZZ_DIR/artifacts/. Limits per input: 2 GB
# of RSS, 1 GB in one allocation, 10 s. Prints executions per target and exits
# non-zero when any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${MOESIM_FUZZ_DIR:-build-fuzz}
targets=(scenario trace_read jsonl_import calibration requests sweep)
if [ $# -gt 1 ]; then
  shift
  for t in "$@"; do
    [[ " ${targets[*]} " == *" $t "* ]] || { echo "fuzz: unknown target '$t' (${targets[*]})" >&2; exit 2; }
  done
  targets=("$@")
fi

packages=(clang-14 libclang-rt-14-dev libfuzzer-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMOESIM_FUZZ=ON -DMOESIM_CUDA=OFF -DMOESIM_MPI=OFF >&2
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}" >&2

mkdir -p "$build/artifacts"
summary=()
status=0
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  log="$build/fuzz_$t.log"
  dict=()
  [ "$t" != trace_read ] && dict=(-dict=tests/fuzz/json.dict)
  echo "fuzz: $t for ${seconds}s (log: $log)" >&2
  # The first folder receives new inputs; the seeds are only read.
  rc=0
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -timeout=10 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" "${dict[@]}" \
    "$build/corpus/$t" "tests/fuzz/corpus/$t" tests/data/bad </dev/null >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$rc" = 0 ]; then
    result=ok
  else
    result="CRASH (exit $rc; see $log and $build/artifacts/$t-*)"
    status=1
  fi
  summary+=("$(printf '%-14s %12s executions  %s' "$t" "${runs:-?}" "$result")")
done
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit $status
