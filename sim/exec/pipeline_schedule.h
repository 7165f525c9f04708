#pragma once
// Pipeline schedules: the order in which one stage runs the forward and
// backward passes of its micro-batches (Megatron-LM's 1F1B and interleaved
// 1F1B with virtual stages), and how layers are split among virtual stages.

#include <vector>

#include "sim/exec/step_inputs.h"

namespace moesim::exec {

struct PipelineItem {
  bool forward = true;
  int microbatch = 0;
  int chunk = 0;  // model chunk (virtual stage index on this rank), 0 for 1F1B
};

// The sequence of passes stage `stage` of `stages` runs. Interleaved needs
// microbatches % stages == 0 (as in Megatron-LM).
std::vector<PipelineItem> pipeline_order(PipelineSchedule schedule, int stages, int stage,
                                         int microbatches, int virtual_stages);

// Layers of virtual stage v (= chunk * stages + stage): contiguous ranges, as
// even as possible, earlier virtual stages taking the remainder. With
// `embedding_and_loss_as_layers` (Megatron-LM's --account-for-embedding- and
// --account-for-loss-in-pipeline-split) the embedding and the loss each take
// one layer's share of the first and last virtual stage.
struct LayerRange {
  int begin = 0, end = 0;
};
std::vector<LayerRange> split_layers(int layers, int virtual_stage_count,
                                     bool embedding_and_loss_as_layers = false);

}  // namespace moesim::exec
