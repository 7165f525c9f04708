#include "sim/exec/pipeline_schedule.h"

#include <algorithm>

namespace moesim::exec {

std::vector<PipelineItem> pipeline_order(PipelineSchedule schedule, int stages, int stage,
                                         int microbatches, int virtual_stages) {
  std::vector<PipelineItem> order;
  if (schedule == PipelineSchedule::kOneFOneB || virtual_stages == 1) {
    const int warmup = std::min(stages - stage - 1, microbatches);
    for (int i = 0; i < warmup; ++i) order.push_back({true, i, 0});
    for (int i = 0; i < microbatches - warmup; ++i) {
      order.push_back({true, warmup + i, 0});
      order.push_back({false, i, 0});
    }
    for (int i = microbatches - warmup; i < microbatches; ++i) order.push_back({false, i, 0});
    return order;
  }
  // Interleaved 1F1B (Narayanan et al. 2021; Megatron-LM's
  // forward_backward_pipelining_with_interleaving): passes are numbered k, each
  // group of `stages` consecutive ks walks the micro-batches of one chunk.
  const int p = stages, v = virtual_stages;
  const int total = microbatches * v;
  const auto item = [&](int k, bool forward) {
    const int group = k / p;
    const int chunk_in_cycle = group % v;
    const int chunk = forward ? chunk_in_cycle : v - 1 - chunk_in_cycle;
    const int mb = (k / (p * v)) * p + k % p;
    return PipelineItem{forward, mb, chunk};
  };
  const int warmup = std::min(total, (p - stage - 1) * 2 + (v - 1) * p);
  for (int k = 0; k < warmup; ++k) order.push_back(item(k, true));
  for (int i = 0; i < total - warmup; ++i) {
    order.push_back(item(warmup + i, true));
    order.push_back(item(i, false));
  }
  for (int k = total - warmup; k < total; ++k) order.push_back(item(k, false));
  return order;
}

std::vector<LayerRange> split_layers(int layers, int virtual_stage_count,
                                     bool embedding_and_loss_as_layers) {
  std::vector<LayerRange> out(virtual_stage_count);
  const int shares = layers + (embedding_and_loss_as_layers ? 2 : 0);
  const int base = shares / virtual_stage_count, extra = shares % virtual_stage_count;
  int at = embedding_and_loss_as_layers ? -1 : 0;  // share -1 is the embedding
  for (int v = 0; v < virtual_stage_count; ++v) {
    out[v].begin = std::max(0, at);
    at += base + (v < extra ? 1 : 0);
    out[v].end = std::min(layers, std::max(0, at));
  }
  return out;
}

}  // namespace moesim::exec
