// Placeholder entry points until issue #6 lands; the owner of that issue
// deletes this file and adds the real commands.

#include "sim/app/bench.h"
#include "sim/app/commands.h"

namespace moesim::cli {

int bench_step_main(const Args&) {
  throw Error("not available yet (issue #6)");
}
int validate_published_main(const Args&) {
  throw Error("not available yet (issue #6)");
}

}  // namespace moesim::cli
