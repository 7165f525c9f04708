#pragma once
// Benchmark subjects of `moesim bench`; each lives in its own bench_*.cpp file.

#include "sim/app/cli.h"

namespace moesim::cli {

// This process's peak resident set size so far, in bytes.
double peak_rss_bytes();

int bench_engine_main(const Args& args);
int bench_network_main(const Args& args);
int bench_trace_main(const Args& args);
int bench_kernel_main(const Args& args);
int bench_step_main(const Args& args);
int bench_search_main(const Args& args);
int bench_inference_main(const Args& args);

// Subjects of `moesim validate`.
int validate_kernel_main(const Args& args);
int validate_published_main(const Args& args);

}  // namespace moesim::cli
