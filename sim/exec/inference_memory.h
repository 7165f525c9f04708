#pragma once
// Memory per GPU of a serving instance, and what is left for the KV cache.
//
// What a GPU holds, the way SGLang and vLLM lay out a large-EP MoE deployment
// (attention data-parallel, experts expert-parallel over the same GPUs):
//  - weights: attention, dense FFN and shared experts split over the replica's
//    tp GPUs (replicated across attention replicas); the GPU's share of the
//    expert slots (slots / ep experts, each split over expert_tp GPUs); the
//    router on every GPU; embedding and LM head vocabulary-parallel over tp.
//    Linear layers are stored in workload.dtype, routed experts at the model's
//    expert_weight_bits where it has them (gpt-oss: MXFP4); embedding, LM
//    head, norms and router stay in BF16 (DeepSeek-V3's FP8 checkpoint
//    quantizes the transformer blocks' linear layers only: README_WEIGHTS.md);
//  - activations of the largest iteration: max_num_tokens tokens through one
//    layer (residual, norm output, attention projections and output, the
//    expert side's received copies and their up-projection, the LM head's
//    logits for the sequences that sample), freed layer by layer;
//  - DeepEP's low-latency buffer where that dispatch runs: DeepEP's
//    Buffer.get_low_latency_rdma_size_hint (csrc/config.hpp LowLatencyLayout):
//    send and receive buffers for every expert x max tokens per rank, dispatch
//    and combine messages, double-buffered;
//  - a reserve for the CUDA context, cuBLAS workspaces, NCCL and DeepEP
//    normal-mode buffers, CUDA graphs and allocator slack
//    (options.reserved_memory_gib);
// and the rest is KV cache, in whole blocks of kv_block_tokens.

#include <cstdint>

#include "sim/exec/inference_costs.h"
#include "sim/exec/step_inputs.h"

namespace moesim::exec {

struct InferenceMemoryInputs {
  double linear_weight_bits = 16;  // workload.dtype
  double expert_weight_bits = 16;  // routed experts
  int64_t max_num_tokens = 0;      // tokens per iteration per replica
  int64_t max_batch_size = 0;      // running requests per replica
  bool low_latency_buffer = false;
  // Tokens one rank dispatches per low-latency call at most
  // (num_max_dispatch_tokens_per_rank).
  int64_t low_latency_tokens_per_rank = 0;
  double kv_bytes_per_token_per_gpu = 0;
  int64_t kv_block_tokens = 64;
  double hbm_bytes = 0, reserved_bytes = 0;
};

struct InferenceMemory {
  double attention_weight_bytes = 0, expert_weight_bytes = 0, dense_weight_bytes = 0,
         embedding_weight_bytes = 0;
  double activation_bytes = 0, a2a_buffer_bytes = 0, reserved_bytes = 0;
  double kv_cache_bytes = 0;  // what is left, in whole blocks (0 if nothing is)
  double capacity_bytes = 0;
  int64_t kv_blocks = 0;  // per GPU, hence per attention replica

  double weight_bytes() const {
    return attention_weight_bytes + expert_weight_bytes + dense_weight_bytes +
           embedding_weight_bytes;
  }
  double used_bytes_before_kv() const {
    return weight_bytes() + activation_bytes + a2a_buffer_bytes + reserved_bytes;
  }
  // The instance can run when its weights and working memory fit with room
  // for at least one KV block.
  bool fits() const { return kv_blocks > 0; }
};

InferenceMemory estimate_inference_memory(const ModelShape& model,
                                          const InferenceParallel& parallel,
                                          const InferenceMemoryInputs& inputs);

}  // namespace moesim::exec
