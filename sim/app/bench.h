#pragma once
// Benchmark subjects of `moesim bench`; each lives in its own bench_*.cpp file.

#include "sim/app/cli.h"

namespace moesim::cli {

int bench_engine_main(const Args& args);

}  // namespace moesim::cli
