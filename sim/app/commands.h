#pragma once
// Entry points of the subcommands; each lives in its own cmd_*.cpp file.

#include "sim/app/cli.h"

namespace moesim::cli {

int run_main(const Args& args);
int bench_main(const Args& args);
int collective_main(const Args& args);
int presets_main(const Args& args);
int models_main(const Args& args);
int trace_main(const Args& args);
int calibrate_main(const Args& args);
int validate_main(const Args& args);
int sweep_main(const Args& args);
int search_main(const Args& args);
int plot_main(const Args& args);

}  // namespace moesim::cli
