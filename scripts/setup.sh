#!/usr/bin/env bash
# Installs the Debian packages moesim needs (skipping those already present)
# and configures + builds it. Idempotent. Usage: scripts/setup.sh [build-dir] [cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true

packages=(build-essential cmake ninja-build pkg-config libboost-program-options-dev
          nlohmann-json3-dev libfmt-dev catch2 libopenblas-dev python3
          libboost-mpi-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

cmake -S . -B "$build" -G Ninja "$@" >&2
cmake --build "$build" -j "$(nproc)" >&2
