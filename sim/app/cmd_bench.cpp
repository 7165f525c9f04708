// `moesim bench <subject>`: benchmarks that print one JSON object each, so a
// performance regression shows up as a number. One bench_*.cpp per subject.

#include <iostream>

#include <fmt/format.h>

#include "sim/app/bench.h"
#include "sim/app/commands.h"

namespace moesim::cli {
namespace {

constexpr Command kBenchmarks[] = {
    {"engine", "hold-model event throughput vs std::priority_queue", bench_engine_main},
    {"network", "uniform all-to-allv across a large cluster (flow-level network)",
     bench_network_main},
    {"trace", "generate, write and read back a large routing trace", bench_trace_main},
    {"kernel", "reference MoE kernel throughput vs BLAS peak and PyTorch", bench_kernel_main},
    {"step", "one DeepSeek-V3 training step on 2,048 GPUs (execution model speed)",
     bench_step_main},
    {"inference", "2,000+ decode iterations of DeepSeek-V3 EP72 serving (serving simulation speed)",
     bench_inference_main},
    {"search", "strategy search over >= 500 points (Mixtral-8x22B, 256 GPUs)", bench_search_main},
};

}  // namespace

int bench_main(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: moesim bench <subject> [options] --json   (subject --help for details)\n\n"
                 "subjects:\n";
    for (const Command& b : kBenchmarks)
      std::cout << fmt::format("  {:<10}{}\n", b.name, b.summary);
    return args.empty() ? 2 : 0;
  }
  for (const Command& b : kBenchmarks) {
    if (args[0] == b.name) return b.main(Args(args.begin() + 1, args.end()));
  }
  throw Error(fmt::format("unknown benchmark '{}' (see moesim bench --help)", args[0]));
}

}  // namespace moesim::cli
