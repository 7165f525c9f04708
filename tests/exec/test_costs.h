#pragma once
// Closed-form costs for execution-model tests: GEMMs at a fixed FLOP rate,
// memory-bound kernels at a fixed bandwidth, no launch overhead, so expected
// step times can be worked out by hand.

#include <cmath>
#include <functional>
#include <memory>

#include "hwmodels/compute_cost.h"
#include "sim/collectives/collective.h"
#include "sim/exec/step_inputs.h"
#include "sim/exec/training_step.h"

namespace moesim::exec::testing {

class LinearCost : public hw::ComputeCostModel {
 public:
  LinearCost(double flops_per_s, double bytes_per_s) : flops_(flops_per_s), bw_(bytes_per_s) {}
  double gemm_seconds(int64_t m, int64_t n, int64_t k, hw::DType) const override {
    return 2.0 * m * n * k / flops_;
  }
  double grouped_gemm_seconds(std::span<const int64_t> m, int64_t n, int64_t k,
                              hw::DType dt) const override {
    double s = 0;
    for (int64_t x : m) s += gemm_seconds(x, n, k, dt);
    return s;
  }
  double memory_bound_seconds(double bytes) const override { return bytes / bw_; }
  double fused_kernel_seconds(double flops, double bytes, hw::DType) const override {
    return std::max(flops / flops_, bytes / bw_);
  }
  double launch_overhead_seconds() const override { return 0; }

 private:
  double flops_, bw_;
};

// A small MoE model: every layer MoE, no embeddings or output head, so a step
// is only the transformer blocks.
inline ModelShape tiny_moe(int layers = 1, int experts = 8, int top_k = 2) {
  ModelShape m;
  m.name = "test";
  m.layers = layers;
  m.hidden = 1024;
  m.heads = 8;
  m.kv_heads = 8;
  m.head_dim = 128;
  m.dense_ffn = 4096;
  m.expert_ffn = 2048;
  m.experts = experts;
  m.top_k = top_k;
  m.vocab = 0;
  m.moe_layer.assign(layers, true);
  m.attention_params_per_layer = 4.0 * 1024 * 1024;
  m.expert_params = 3.0 * 1024 * 2048;
  m.router_params = 1024.0 * experts;
  m.dense_ffn_params = 3.0 * 1024 * 4096;
  m.forward_flops_per_token = 1e9;
  return m;
}

// tiny_moe with DeepSeek-V3's MLA attention geometry: latent 512, RoPE key
// 64, no-RoPE 128, value 128 per head (query latent 256).
inline ModelShape tiny_mla(int layers = 1) {
  ModelShape m = tiny_moe(layers);
  m.q_lora_rank = 256;
  m.kv_lora_rank = 512;
  m.qk_nope_head_dim = 128;
  m.qk_rope_head_dim = 64;
  m.v_head_dim = 128;
  return m;
}

// Routing where every source rank sends `tokens * top_k` copies spread evenly
// (or all to expert `hot` when hot >= 0).
inline RoutingSample even_routing(int ep, int experts, int64_t tokens_per_rank, int top_k,
                                  int hot = -1) {
  RoutingSample rs;
  rs.ep = ep;
  rs.local_experts = experts / ep;
  rs.pair_tokens.assign(static_cast<size_t>(ep) * ep, 0);
  rs.expert_tokens.assign(static_cast<size_t>(ep) * rs.local_experts, 0);
  const int64_t copies = tokens_per_rank * top_k;
  for (int src = 0; src < ep; ++src) {
    if (hot >= 0) {
      const int dst = hot / rs.local_experts;
      rs.pair_tokens[src * ep + dst] += copies;
      rs.expert_tokens[hot] += copies;
      continue;
    }
    for (int e = 0; e < experts; ++e) {
      const int64_t n = copies / experts;
      rs.pair_tokens[src * ep + e / rs.local_experts] += n;
      rs.expert_tokens[e] += n;
    }
  }
  rs.tokens_in = tokens_per_rank * ep;
  rs.routed = copies * ep;
  return rs;
}

// A collective timer that completes each collective after fn(collective)
// seconds: closed forms for tests.
using CollectiveSeconds = std::function<double(const coll::Collective&)>;
class FunctionTimer : public coll::CollectiveTimer {
 public:
  FunctionTimer(Engine& engine, CollectiveSeconds fn) : engine_(engine), fn_(std::move(fn)) {}
  void start(const coll::Collective& c, EventHandler& done, uint64_t arg) override {
    engine_.schedule_after(SimTime::from_seconds(fn_(c)), done, arg);
  }

 private:
  Engine& engine_;
  CollectiveSeconds fn_;
};

inline HardwareCosts hardware(const hw::ComputeCostModel& cost, CollectiveSeconds fn) {
  return {&cost, [fn](Engine& engine) { return std::make_unique<FunctionTimer>(engine, fn); }};
}

// The largest bytes any rank of an all-to-allv sends (or, with `receive`,
// also receives) to others.
inline double busiest_rank_bytes(const coll::Collective& c, bool receive) {
  std::vector<double> bytes;
  c.byte_matrix(bytes);
  const size_t n = c.ranks.size();
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    double out = 0, in = 0;
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      out += bytes[i * n + j];
      in += bytes[j * n + i];
    }
    worst = std::max({worst, out, receive ? in : 0.0});
  }
  return worst;
}

}  // namespace moesim::exec::testing
