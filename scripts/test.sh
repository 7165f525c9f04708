#!/usr/bin/env bash
# Quick start, step 2: build (installing what is missing) and run the whole
# test suite through CTest. Extra arguments go to cmake (e.g. -DMOESIM_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${MOESIM_BUILD_DIR:-build}
scripts/setup.sh "$build" "$@"
ctest --test-dir "$build" -j "$(nproc)" --output-on-failure --timeout 600
