// `moesim validate <subject>`: predictions set against measurements (the
// reference kernel timed on this machine) or published figures.

#include <iostream>

#include <fmt/format.h>

#include "sim/app/bench.h"
#include "sim/app/commands.h"

namespace moesim::cli {

int validate_gpu_main(const Args& args);  // validate_gpu.cpp

namespace {

constexpr Command kSubjects[] = {
    {"kernel", "predicted vs measured time of the reference MoE layer on this machine",
     validate_kernel_main},
    {"published",
     "predicted vs published training step times, DeepEP and NCCL figures, SGLang serving",
     validate_published_main},
    {"gpu-calibration",
     "the roofline's GEMM and attention throughput vs published kernel benchmarks (H100/H800)",
     validate_gpu_main},
};

}  // namespace

int validate_main(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: moesim validate <subject> [options]   (subject --help for details)\n\n"
                 "subjects:\n";
    for (const Command& s : kSubjects) std::cout << fmt::format("  {:<17}{}\n", s.name, s.summary);
    return args.empty() ? 2 : 0;
  }
  for (const Command& s : kSubjects) {
    if (args[0] == s.name) return s.main(Args(args.begin() + 1, args.end()));
  }
  throw Error(fmt::format("unknown validation subject '{}' (see moesim validate --help)", args[0]));
}

}  // namespace moesim::cli
