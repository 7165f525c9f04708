// Placeholder entry points until issue #5 lands; the owner of that issue
// deletes this file and adds the real commands.

#include "sim/app/bench.h"
#include "sim/app/commands.h"

namespace moesim::cli {

int calibrate_main(const Args&) {
  throw Error("not available yet (issue #5)");
}
int validate_kernel_main(const Args&) {
  throw Error("not available yet (issue #5)");
}
int bench_kernel_main(const Args&) {
  throw Error("not available yet (issue #5)");
}

}  // namespace moesim::cli
