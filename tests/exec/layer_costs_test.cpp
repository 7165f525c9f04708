// FP8 training's kernel prices (DeepSeek-V3 report 3.3): the linear layers'
// GEMMs run in FP8 behind casts of their operands; attention, the router gate
// and the output head stay BF16. Closed forms against the same layer in BF16.

#include <catch2/catch.hpp>

#include "sim/exec/layer_costs.h"
#include "tests/exec/test_costs.h"

namespace moesim::exec {
namespace {

using testing::even_routing;
using testing::tiny_mla;
using testing::tiny_moe;

constexpr double kFlops = 1e14, kBytesPerS = 1e12;

// GEMMs twice as fast in FP8 as in BF16 (as on Hopper); everything else at
// one rate whatever the dtype.
class DtypeCost : public testing::LinearCost {
 public:
  DtypeCost() : LinearCost(kFlops, kBytesPerS) {}
  double gemm_seconds(int64_t m, int64_t n, int64_t k, hw::DType dt) const override {
    return LinearCost::gemm_seconds(m, n, k, dt) / (dt == hw::DType::kFp8 ? 2 : 1);
  }
  double fused_kernel_seconds(double flops, double bytes, hw::DType dt) const override {
    return std::max(flops / (dt == hw::DType::kFp8 ? 2 * kFlops : kFlops), bytes / kBytesPerS);
  }
};

// One FP8 cast of `elements` BF16 values: 2 bytes read, 1 + 4/128 written.
double cast(double elements) {
  return elements * (3 + 1.0 / 32) / kBytesPerS;
}

struct Priced {
  LayerKernelSeconds kernels;
  std::vector<double> expert_fwd, expert_bwd;
};

const DtypeCost kDtypeCost;

Priced price(hw::DType dtype, hw::DType dispatch, const ModelShape& m = tiny_moe(1),
             const hw::ComputeCostModel& cost = kDtypeCost) {
  ParallelConfig p;
  p.ep = 2;
  p.dp = 2;
  p.dispatch_dtype = dispatch;
  TrainingWorkload w;
  w.seq_len = 256;
  w.global_batch = 2;
  w.compute_dtype = dtype;
  std::vector<LayerRouting> routing(1);
  routing[0].samples.push_back(even_routing(p.ep, m.experts, 256, m.top_k));
  LayerCostModel layer(m, p, w, routing, cost);
  return {layer.kernels(), layer.expert_seconds(0, 0, 0, false),
          layer.expert_seconds(0, 0, 0, true)};
}

TEST_CASE("FP8 training adds the casts of each linear layer and keeps the rest BF16",
          "[exec][fp8]") {
  const ModelShape m = tiny_moe(1);
  const double T = 256, h = m.hidden, heads_hd = m.heads * m.head_dim;
  const Priced bf16 = price(hw::DType::kBf16, hw::DType::kBf16);
  const Priced fp8 = price(hw::DType::kFp8, hw::DType::kBf16);
  const auto gemm = [](double rows, double n, double k) { return 2 * rows * n * k / kFlops; };

  // Router gate and output head: BF16 in both (no vocabulary here, so the
  // router alone). Its permutation moves BF16 tokens in both.
  CHECK(fp8.kernels.router_fwd == Approx(bf16.kernels.router_fwd).epsilon(1e-12));

  // Attention: the projections run at the FP8 rate (half the time), the core
  // attention and the norms at BF16's; the casts in front: QKV reads the
  // hidden state, the output projection the heads' values.
  const double qkv_out = (m.heads + 2 * m.kv_heads) * m.head_dim;
  const double proj = gemm(T, qkv_out, h) + gemm(T, h, heads_hd);
  CHECK(fp8.kernels.attention_fwd - bf16.kernels.attention_fwd ==
        Approx(-proj / 2 + cast(T * h) + cast(T * heads_hd)).epsilon(1e-9));
  // Weight gradients: both operands of each GEMM cast along the tokens.
  const double wgrad_casts = cast(T * (h + qkv_out)) + cast(T * (heads_hd + h));
  CHECK(fp8.kernels.attention_wgrad - bf16.kernels.attention_wgrad ==
        Approx(-proj / 2 + wgrad_casts).epsilon(1e-9));
  // Backward: data and weight gradients, plus the output gradients' casts.
  CHECK(fp8.kernels.attention_bwd - bf16.kernels.attention_bwd ==
        Approx(-proj + cast(T * qkv_out) + cast(T * h) + wgrad_casts).epsilon(1e-9));

  // A dense FFN (SwiGLU, width 4,096): up reads the hidden state and writes
  // 2 x 4,096; down reads 4,096 and writes the hidden state.
  const double w = m.dense_ffn, up = 2 * w;
  const double ffn = gemm(T, up, h) + gemm(T, h, w);
  CHECK(fp8.kernels.dense_fwd - bf16.kernels.dense_fwd ==
        Approx(-ffn / 2 + cast(T * (h + w))).epsilon(1e-9));
  CHECK(fp8.kernels.dense_wgrad - bf16.kernels.dense_wgrad ==
        Approx(-ffn / 2 + cast(T * (h + w + up + h))).epsilon(1e-9));
  CHECK(fp8.kernels.dense_bwd - bf16.kernels.dense_bwd ==
        Approx(-ffn + cast(T * (up + h)) + cast(T * (h + w + up + h))).epsilon(1e-9));
  // Selective recompute re-runs the whole dense FFN (`mlp`), casts included.
  CHECK(fp8.kernels.dense_recompute == Approx(fp8.kernels.dense_fwd).epsilon(1e-12));

  // Routed experts on EP rank 0: 256 tokens x top-2 from each of 2 ranks,
  // all its 4 experts evenly (1,024 rows).
  const double rows = 2 * 256 * m.top_k / 2, f = m.expert_ffn, eup = 2 * f;
  const double experts = gemm(rows, eup, h) + gemm(rows, h, f);
  CHECK(fp8.expert_fwd[0] - bf16.expert_fwd[0] ==
        Approx(-experts / 2 + cast(rows * (h + f))).epsilon(1e-9));
  CHECK(fp8.expert_bwd[2] - bf16.expert_bwd[2] ==
        Approx(-experts / 2 + cast(rows * (h + f + eup + h))).epsilon(1e-9));
  // Tokens dispatched in FP8 reach the up-projection already quantized.
  const Priced fp8_dispatch = price(hw::DType::kFp8, hw::DType::kFp8);
  CHECK(fp8.expert_fwd[0] - fp8_dispatch.expert_fwd[0] == Approx(cast(rows * h)).epsilon(1e-9));
  CHECK(fp8_dispatch.expert_bwd[0] == Approx(fp8.expert_bwd[0]).epsilon(1e-12));
}

// Selective recompute's `mla_up_proj` (multi_latent_attention.py
// qkv_up_proj_and_rope_apply) re-runs MLA's two up-projections and the fused
// RoPE kernels that assemble query, key and value: they read q (heads x 192)
// and kv (heads x 256, plus the 64-wide shared RoPE key) and write query
// (192), key (192) and value (128) per head. The forward and backward pay that
// assembly once each; other attention has nothing to re-run.
TEST_CASE("MLA prices its RoPE assembly and selective recompute re-runs its up-projections",
          "[exec][recompute]") {
  const ModelShape m = tiny_mla(1);
  const double T = 256, heads = m.heads, qk = 192, nope = 128, v = 128, rope = 64;
  const Priced mla = price(hw::DType::kBf16, hw::DType::kBf16, m);
  const double assembly = T * 2 * (heads * (qk + (nope + v) + qk + qk + v) + rope) / kBytesPerS;
  const double up = 2 * T * heads * qk * m.q_lora_rank / kFlops +
                    2 * T * heads * (nope + v) * m.kv_lora_rank / kFlops;
  CHECK(mla.kernels.attention_recompute == Approx(up + assembly).epsilon(1e-9));
  // Under FP8 the up-projections run at twice the rate behind casts of their
  // latent inputs.
  const Priced fp8 = price(hw::DType::kFp8, hw::DType::kBf16, m);
  CHECK(fp8.kernels.attention_recompute ==
        Approx(up / 2 + cast(T * (m.q_lora_rank + m.kv_lora_rank)) + assembly).epsilon(1e-9));
  CHECK(price(hw::DType::kBf16, hw::DType::kBf16).kernels.attention_recompute == 0);
  // The assembly is part of the attention's forward: the five projections,
  // the core attention (causal, seq_len 256), the two norms and the assembly.
  const double h = m.hidden;
  const double proj =
      2 * T *
      (h * m.q_lora_rank + m.q_lora_rank * heads * qk + h * (m.kv_lora_rank + rope) +
       m.kv_lora_rank * heads * (nope + v) + heads * v * h) /
      kFlops;
  const double core = std::max(2 * T * T * 0.5 * heads * (qk + v) / kFlops,
                               T * 2 * heads * (2 * qk + 2 * v) / kBytesPerS);
  const double norms = 2 * (2 * T * h * 2) / kBytesPerS;
  CHECK(mla.kernels.attention_fwd == Approx(proj + core + norms + assembly).epsilon(1e-9));
}

// Weight-gradient GEMMs priced by the cost model's own wgrad methods (here
// three times a forward GEMM): every *_wgrad entry is the wgrad GEMMs alone,
// and each backward is its data-gradient GEMMs at the forward price plus them.
class SlowWgradCost : public testing::LinearCost {
 public:
  SlowWgradCost() : LinearCost(kFlops, 1e30) {}
  double wgrad_gemm_seconds(int64_t tokens, int64_t out, int64_t in, hw::DType) const override {
    return 3 * 2.0 * tokens * out * in / kFlops;
  }
  double grouped_wgrad_gemm_seconds(std::span<const int64_t> tokens, int64_t out, int64_t in,
                                    hw::DType) const override {
    double s = 0;
    for (int64_t t : tokens) s += 3 * 2.0 * t * out * in / kFlops;
    return s;
  }
};

TEST_CASE("weight-gradient GEMMs take the cost model's wgrad price", "[exec][wgrad]") {
  ModelShape m = tiny_moe(1);
  m.shared_ffn = 1024;
  const Priced bf16 = price(hw::DType::kBf16, hw::DType::kBf16, m, SlowWgradCost());
  const LayerKernelSeconds& k = bf16.kernels;
  const double T = 256, h = m.hidden;
  // Attention: QKV (8 + 2 x 8 heads x 128) and output projections.
  const double proj = 2 * T * (h * 3 * 8 * 128 + 8 * 128 * h) / kFlops;
  CHECK(k.attention_wgrad == Approx(3 * proj).epsilon(1e-12));
  // Shared experts (SwiGLU, width 1024): up 2048 x h, down h x 1024.
  const double shared = 2 * T * (h * 2048 + 1024 * h) / kFlops;
  CHECK(k.shared_wgrad == Approx(3 * shared).epsilon(1e-12));
  CHECK(k.shared_bwd - k.shared_wgrad == Approx(shared).epsilon(1e-12));  // dgrad GEMMs only
  // Routed experts: the wgrad entry is three times the forward GEMMs (the
  // activation is free at this bandwidth); the backward adds the data-gradient
  // GEMMs at the forward price.
  const std::vector<double>& bwd = bf16.expert_bwd;
  const double gemms = bf16.expert_fwd[0];  // no activation cost at infinite bandwidth
  CHECK(bwd[2] == Approx(3 * gemms).epsilon(1e-12));
  CHECK(bwd[0] == Approx(gemms + 3 * gemms).epsilon(1e-12));
}

// The core attention is priced as a kernel of its own shape: the model's head
// dim (MLA's v width, 128, whose measured rates FlashAttention-3's 128 curve
// matches), the sequence as its reach, a backward pass of 2.5x the FLOPs; a
// windowed layer as a kernel reaching the window that attends its mean keys,
// averaged with the full layers. Each kernel costs 1 s per FLOP-unit at the
// forward and 2 s at the backward here, so the closed forms read directly.
class AttentionRecorder : public testing::LinearCost {
 public:
  AttentionRecorder() : LinearCost(kFlops, kBytesPerS) {}
  double attention_seconds(const hw::AttentionKernel& k) const override {
    seen.push_back(k);
    return k.flops / kFlops * (k.pass == hw::AttentionKernel::Pass::kBackward ? 2 : 1);
  }
  mutable std::vector<hw::AttentionKernel> seen;
};

TEST_CASE("core attention: the kernel's head dim, reach, pass and windows", "[exec]") {
  using Pass = hw::AttentionKernel::Pass;
  const AttentionRecorder gqa_cost;
  ModelShape gqa = tiny_moe(4);
  gqa.head_dim = 64;
  const Priced full = price(hw::DType::kBf16, hw::DType::kBf16, gqa, gqa_cost);
  REQUIRE(gqa_cost.seen.size() == 2);
  const hw::AttentionKernel fwd = gqa_cost.seen[0], bwd = gqa_cost.seen[1];
  CHECK((fwd.head_dim == 64 && fwd.span == 256 && fwd.causal && fwd.pass == Pass::kForward));
  CHECK((bwd.head_dim == 64 && bwd.span == 256 && bwd.pass == Pass::kBackward));
  // 4 x T x (T / 2) x heads x head_dim forward; 2.5x that backward.
  const double core_flops = 4.0 * 256 * 128 * gqa.heads * 64;
  CHECK(fwd.flops == Approx(core_flops));
  CHECK(bwd.flops == Approx(2.5 * core_flops));
  CHECK(fwd.dtype == hw::DType::kBf16);

  // MLA: v's 128, whatever q.k's width.
  const AttentionRecorder mla_cost;
  price(hw::DType::kBf16, hw::DType::kBf16, tiny_mla(1), mla_cost);
  REQUIRE_FALSE(mla_cost.seen.empty());
  CHECK(mla_cost.seen[0].head_dim == 128);

  // Half the layers windowed to 64 keys (sliding): mean keys 64 - 64^2 / 512 = 56.
  ModelShape windowed = gqa;
  windowed.windowed_layers = 2;
  windowed.window_span = 64;
  windowed.window_mean_keys = 56;
  const AttentionRecorder window_cost;
  const Priced mixed = price(hw::DType::kBf16, hw::DType::kBf16, windowed, window_cost);
  REQUIRE(window_cost.seen.size() == 4);
  CHECK(window_cost.seen[1].span == 64);
  CHECK(window_cost.seen[1].flops == Approx(core_flops * 56 / 128));
  const double full_core = core_flops / kFlops, window_core = full_core * 56 / 128;
  // attention_fwd less the core is the same in both; the core is the layers' mean.
  CHECK(full.kernels.attention_fwd - mixed.kernels.attention_fwd ==
        Approx(full_core - (full_core + window_core) / 2).epsilon(1e-9));
  CHECK(full.kernels.attention_bwd - mixed.kernels.attention_bwd ==
        Approx(2 * 2.5 * (full_core - (full_core + window_core) / 2)).epsilon(1e-9));
}

}  // namespace
}  // namespace moesim::exec
