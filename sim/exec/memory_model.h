#pragma once
// Memory per GPU for a training step: weights, gradients, optimizer states
// (per ZeRO stage), the activations of the micro-batches the pipeline schedule
// keeps in flight (with recompute), the routed tokens' buffers, and a reserve
// for the CUDA context, communication buffers and allocator fragmentation.
//
// Byte counts per parameter (mixed precision with Adam, Megatron-LM's
// distributed optimizer): BF16 weight 2, FP32 gradient 4, FP32 master weight +
// two moments 12. ZeRO 1 shards the 12, ZeRO 2 also the gradients, ZeRO 3 also
// the weights, over the data-parallel group (expert parameters over the
// expert-data-parallel group).
//
// Activations per token and layer follow Korthikanti et al. 2022 ("Reducing
// Activation Recomputation in Large Transformer Models", section 4) with flash
// attention (no s^2 score matrices), generalised to GQA/MLA widths, SwiGLU, and
// routed experts (each routed copy stores its permuted input, the expert's
// intermediate activations and its output for the combine).

#include <vector>

#include "sim/exec/step_inputs.h"

namespace moesim::exec {

struct MemoryBreakdown {
  int stage = 0;
  double weights_bytes = 0;
  double gradients_bytes = 0;
  double optimizer_bytes = 0;
  double activations_bytes = 0;
  double routed_tokens_bytes = 0;  // dispatch/combine buffers of the busiest rank
  double logits_bytes = 0;
  double reserved_bytes = 0;
  int inflight_microbatches = 0;  // in layer-chunks of this stage
  double total_bytes() const {
    return weights_bytes + gradients_bytes + optimizer_bytes + activations_bytes +
           routed_tokens_bytes + logits_bytes + reserved_bytes;
  }
};

struct MemoryEstimate {
  std::vector<MemoryBreakdown> per_stage;  // every GPU of a stage has the same profile
  double peak_bytes = 0;
  int peak_stage = 0;
  double capacity_bytes = 0;
  bool fits() const { return peak_bytes <= capacity_bytes; }
};

// Token copies a GPU's experts receive for one MoE layer and micro-batch:
// the mean over GPUs, and the most any GPU receives. A GPU holds the mean
// for most of its layers in flight and the worst case for one (the hot
// experts of different layers rarely share a GPU); imbalance costs memory.
struct RoutedCopies {
  double mean = 0, max = 0;
};

MemoryEstimate estimate_memory(const ModelShape& model, const ParallelConfig& parallel,
                               const TrainingWorkload& workload, RoutedCopies routed_per_gpu,
                               double capacity_bytes, double reserved_bytes);

// Parameters (elements) one GPU of `stage` holds before any ZeRO sharding.
struct LocalParams {
  double dense = 0;    // attention, dense FFN, shared experts, routers, embeddings
  double experts = 0;  // routed experts
};
LocalParams local_params(const ModelShape& model, const ParallelConfig& parallel, int stage);

}  // namespace moesim::exec
