#!/usr/bin/env bash
# The layering of the simulation library, checked on its #include lines: each
# directory may include only the layers below it (README "Architecture"). The
# CMake targets enforce the same at link time; this catches a header-only
# dependency too. Usage: layering.sh SOURCE_DIR
set -u
cd "$1" || exit 2
fail=0
# check DIR ALLOWED_REGEX: every project include in DIR's sources must match.
check() {
  local dir=$1 allowed=$2
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$line")
    if ! grep -Eq "^($allowed)" <<<"$inc"; then
      echo "FAIL: $file includes $inc (not allowed in $dir)"
      fail=1
    fi
  done < <(grep -rn --include='*.h' --include='*.cpp' --include='*.cu' '#include "' "$dir")
}
core='sim/core/'
engine="$core|sim/engine/"
hw="$core|hwmodels/[a-z_]+\.h"  # not hwmodels/kernels/ (the reference kernels)
check sim/core "$core"
check sim/engine "$engine"
check sim/demo "$engine|sim/demo/"
check workloads "$core|workloads/"
check sim/network "$engine|$hw|sim/network/"
check sim/collectives "$engine|$hw|sim/network/|sim/collectives/"
# The execution model sees the collective and compute-cost interfaces only.
check sim/exec "$engine|sim/exec/|sim/collectives/collective.h|hwmodels/compute_cost.h|hwmodels/dtype.h"
check sim/scenario "$engine|$hw|workloads/|sim/collectives/|sim/exec/|sim/scenario/"
check reports "$engine|$hw|workloads/|sim/collectives/collective.h|sim/exec/|sim/scenario/|reports/"
check sim/explore "$engine|$hw|workloads/|sim/collectives/|sim/exec/|sim/scenario/|reports/|sim/explore/"
[ $fail = 0 ] && echo "layering: every include goes down the layers"
exit $fail
