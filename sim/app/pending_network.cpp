// Placeholder entry points until issue #3 lands; the owner of that issue
// deletes this file and adds the real commands.

#include "sim/app/bench.h"
#include "sim/app/commands.h"

namespace moesim::cli {

int collective_main(const Args&) {
  throw Error("not available yet (issue #3)");
}
int presets_main(const Args&) {
  throw Error("not available yet (issue #3)");
}
int bench_network_main(const Args&) {
  throw Error("not available yet (issue #3)");
}

}  // namespace moesim::cli
