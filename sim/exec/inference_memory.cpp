#include "sim/exec/inference_memory.h"

#include <algorithm>
#include <cmath>

namespace moesim::exec {
namespace {

constexpr double kBf16 = 2;

// DeepEP's low-latency buffer (csrc/config.hpp LowLatencyLayout, the size
// Buffer.get_low_latency_rdma_size_hint returns): per expert and token a
// dispatch message (16-byte header + BF16 hidden, or FP8 with per-128 scales,
// whichever is larger) and a combine message (BF16 hidden + its scales),
// send and receive buffers, two of everything.
double low_latency_buffer_bytes(int64_t hidden, int experts, int64_t tokens_per_rank) {
  const double scales = static_cast<double>(hidden / 128);
  const double dispatch_msg = 16 + std::max(hidden * kBf16, hidden + scales * 4);
  const double combine_msg = scales * kBf16 * 2 + hidden * kBf16;
  const double per_expert = static_cast<double>(experts) * tokens_per_rank;
  const double send = std::max(tokens_per_rank * dispatch_msg, per_expert * combine_msg);
  const double recv = std::max(per_expert * dispatch_msg, per_expert * combine_msg);
  return 2 * (send + recv + experts * 4.0);
}

}  // namespace

InferenceMemory estimate_inference_memory(const ModelShape& m, const InferenceParallel& p,
                                          const InferenceMemoryInputs& in) {
  InferenceMemory mem;
  const double linear = in.linear_weight_bits / 8, expert = in.expert_weight_bits / 8;
  const int moe_layers = m.moe_layers();
  const int dense_layers = m.layers - moe_layers;
  const int tp = p.tp;
  mem.attention_weight_bytes = m.layers * m.attention_params_per_layer * linear / tp;
  mem.dense_weight_bytes =
      (dense_layers * m.dense_ffn_params + moe_layers * m.shared_expert_params) * linear / tp +
      moe_layers * m.router_params * kBf16;
  const double slots_per_gpu = static_cast<double>(m.slots()) / p.ep / p.expert_tp();
  mem.expert_weight_bytes = moe_layers * slots_per_gpu * m.expert_params * expert;
  mem.embedding_weight_bytes = (m.embedding_params + m.output_params) * kBf16 / tp;

  // One layer's working set at the largest iteration (BF16 activations).
  const double tokens = static_cast<double>(in.max_num_tokens);
  const double h = static_cast<double>(m.hidden);
  const double qkv = m.is_mla()
                         ? static_cast<double>(m.heads) *
                               (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim) / tp
                         : (static_cast<double>(m.heads) + 2.0 * m.kv_heads) * m.head_dim / tp;
  const double attention = tokens * (3 * h + qkv) * kBf16;
  const double copies = tokens / tp * m.top_k;  // received on average per GPU
  const double up = static_cast<double>(m.swiglu ? 2 : 1) * m.expert_ffn / p.expert_tp();
  const double experts = copies * (2 * h + up + up / 2) * kBf16;
  const double dense = tokens * static_cast<double>(m.swiglu ? 3 : 2) *
                       std::max(m.dense_ffn, m.shared_ffn) / tp * kBf16;
  const double logits = static_cast<double>(std::min(in.max_batch_size, in.max_num_tokens)) *
                        static_cast<double>(m.vocab) / tp * 4;  // FP32
  mem.activation_bytes = std::max({attention, experts + tokens * h * kBf16, dense}) + logits;
  if (in.low_latency_buffer && p.ep > 1) {
    mem.a2a_buffer_bytes =
        low_latency_buffer_bytes(m.hidden, m.slots(), in.low_latency_tokens_per_rank);
  }
  mem.reserved_bytes = in.reserved_bytes;
  mem.capacity_bytes = in.hbm_bytes;
  const double block_bytes = in.kv_bytes_per_token_per_gpu * in.kv_block_tokens;
  const double left = in.hbm_bytes - mem.used_bytes_before_kv();
  mem.kv_blocks =
      left > 0 && block_bytes > 0 ? static_cast<int64_t>(std::floor(left / block_bytes)) : 0;
  mem.kv_cache_bytes = mem.kv_blocks * block_bytes;
  return mem;
}

}  // namespace moesim::exec
