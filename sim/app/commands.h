#pragma once
// Entry points of the subcommands; each lives in its own cmd_*.cpp file.

#include "sim/app/cli.h"

namespace moesim::cli {

int run_main(const Args& args);
int bench_main(const Args& args);

}  // namespace moesim::cli
