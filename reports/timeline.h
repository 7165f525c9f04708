#pragma once
// Chrome trace-event export of a simulated step (opens in Perfetto and
// chrome://tracing): one process per node, one track per GPU stream (compute,
// tensor-, expert-, data- and context-parallel communication, activation
// offload and reload copies, and pipeline-transfer lanes), slices named by
// layer ("L<i>", an MTP module's "MTP<k>"), micro-batch and phase (a ring
// step's slices by its step, "c<i>"), and
// flow arrows for
// dependencies that cross GPUs (pipeline transfers, and each all-to-all's
// straggler to the expert compute it released on the receiving rank).

#include <string>

#include "sim/exec/step_builder.h"
#include "sim/exec/task_graph.h"

namespace moesim::reports {

struct TimelineOptions {
  int gpus_per_node = 8;
  int max_gpus = 64;  // GPUs beyond this are left out (the trace would be unwieldy)
  // The model's own layers (ModelShape::model_layers()); the layers past them
  // are MTP modules, whose slices are named "MTP<k>" (k from 1). -1: none.
  int model_layers = -1;
};

// The trace as JSON text. Slices on one track never overlap.
std::string chrome_trace(const exec::StepGraph& step, const exec::ExecutionResult& result,
                         const TimelineOptions& options);

}  // namespace moesim::reports
