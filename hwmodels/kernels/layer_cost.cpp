#include "hwmodels/kernels/layer_cost.h"

#include <numeric>

namespace moesim::kern {

MoeStepBytes moe_step_bytes(const MoeShape& s, int64_t kept) {
  const double f = 4.0;  // FP32
  const double T = static_cast<double>(s.tokens), H = static_cast<double>(s.hidden),
               E = static_cast<double>(s.experts), k = static_cast<double>(s.top_k),
               F = static_cast<double>(s.ffn), Fs = static_cast<double>(s.shared_experts * s.ffn);
  const double K = static_cast<double>(kept);
  MoeStepBytes b;
  b.softmax_topk = f * T * E + 8.0 * T * k;   // read logits; write ids + weights
  b.permute = 2.0 * f * K * H + 8.0 * T * k;  // gather rows; routing metadata
  b.activation = f * K * 3.0 * F;             // read gate|up, write activation
  b.combine = f * K * H + 2.0 * f * T * H;    // read expert rows; read-modify-write out
  b.shared_activation = f * T * 3.0 * Fs;
  return b;
}

MoeStepTimes predict_moe_layer(const hw::ComputeCostModel& model, const MoeShape& s,
                               std::span<const int64_t> load) {
  const auto dt = hw::DType::kFp32;
  const int64_t kept = std::accumulate(load.begin(), load.end(), int64_t{0});
  const MoeStepBytes b = moe_step_bytes(s, kept);
  MoeStepTimes p;
  p.router_s = model.gemm_seconds(s.tokens, s.experts, s.hidden, dt);
  p.softmax_topk_s = model.memory_bound_seconds(b.softmax_topk);
  p.permute_s = model.memory_bound_seconds(b.permute);
  p.gate_up_s = model.grouped_gemm_seconds(load, 2 * s.ffn, s.hidden, dt);
  p.activation_s = model.memory_bound_seconds(b.activation);
  p.down_s = model.grouped_gemm_seconds(load, s.hidden, s.ffn, dt);
  p.combine_s = model.memory_bound_seconds(b.combine);
  if (s.shared_experts > 0) {
    const int64_t fs = s.shared_experts * s.ffn;
    p.shared_s = model.gemm_seconds(s.tokens, 2 * fs, s.hidden, dt) +
                 model.memory_bound_seconds(b.shared_activation) +
                 model.gemm_seconds(s.tokens, s.hidden, fs, dt);
  }
  return p;
}

}  // namespace moesim::kern
