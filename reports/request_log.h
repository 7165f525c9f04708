#pragma once
// The request log of a serving run (`moesim run --request-log FILE`): one
// JSON object per line per request, in the order of the scenario's requests
// (arrival order; for a trace, its line order), with the times the simulator
// recorded and the latencies the report's percentiles are taken from
// (exec::request_latency). For scripts that want their own statistics: CDFs,
// per-length classes, joins with the input trace. Fields are documented in
// reports/SCHEMA.md.

#include <string>

#include "sim/scenario/inference_run.h"

namespace moesim::reports {

// Writes every request's line, each ending in a newline, to `path`
// atomically (sim/core/file_io.h), in pieces of about 1 MiB, so a log of
// millions of requests is never one string; an empty file when nothing was
// simulated (an out_of_memory run; `moesim run` writes none then).
void write_request_log(const scenario::InferenceRun& run, const std::string& path);

}  // namespace moesim::reports
