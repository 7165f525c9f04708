#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build, and run the main job on
# the embedded default scenario (writes report.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
./build/moesim run -o report.json
