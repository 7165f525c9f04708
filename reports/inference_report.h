#pragma once
// The versioned JSON report of a serving simulation (`moesim run` on a
// scenario with workload.mode "inference"; report_kind "inference"), its
// terminal summary and its timeline. All three only serialise a
// scenario::InferenceRun. Fields are documented in reports/SCHEMA.md.

#include <string>

#include "reports/json_output.h"
#include "sim/scenario/inference_run.h"

namespace moesim::reports {

OrderedJson inference_report(const scenario::InferenceRun& run);

// A few lines: throughput, latency percentiles, goodput, batch and KV cache,
// where iterations spend their time, memory, expert load, warnings.
std::string inference_summary(const scenario::InferenceRun& run);

// Chrome trace (Perfetto) of the recorded iterations: one process per
// instance, one track per GPU (at most max_gpus over all instances), one
// slice per iteration with its tokens and cost breakdown in args.
std::string inference_timeline(const scenario::InferenceRun& run, int max_gpus);

}  // namespace moesim::reports
