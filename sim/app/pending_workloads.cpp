// Placeholder entry points until issue #4 lands; the owner of that issue
// deletes this file and adds the real commands.

#include "sim/app/bench.h"
#include "sim/app/commands.h"

namespace moesim::cli {

int models_main(const Args&) {
  throw Error("not available yet (issue #4)");
}
int trace_main(const Args&) {
  throw Error("not available yet (issue #4)");
}
int bench_trace_main(const Args&) {
  throw Error("not available yet (issue #4)");
}

}  // namespace moesim::cli
