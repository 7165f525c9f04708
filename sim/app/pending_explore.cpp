// Placeholder entry points until issue #7 lands; the owner of that issue
// deletes this file and adds the real commands.

#include "sim/app/bench.h"
#include "sim/app/commands.h"

namespace moesim::cli {

int sweep_main(const Args&) {
  throw Error("not available yet (issue #7)");
}
int search_main(const Args&) {
  throw Error("not available yet (issue #7)");
}
int plot_main(const Args&) {
  throw Error("not available yet (issue #7)");
}
int bench_search_main(const Args&) {
  throw Error("not available yet (issue #7)");
}

}  // namespace moesim::cli
