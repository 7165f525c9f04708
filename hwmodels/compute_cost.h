#pragma once
// How long a device takes for the kernels of a transformer / MoE layer.
//
// The execution model asks only this interface; a roofline model (peak
// throughput x efficiency) and a model driven by measured calibration tables
// both implement it. All results are seconds on one device, including the
// kernel launch overhead where the operation is one kernel launch.

#include <cstdint>
#include <span>

#include "hwmodels/dtype.h"

namespace moesim::hw {

// One fused attention kernel (FlashAttention, cuDNN SDPA) over a batch of
// sequences, described by what sets its throughput: per-head width, how many
// keys a query tile reaches, the mask, and the pass. FLOPs and bytes are
// counted as FlashAttention's benchmarks count them (4 x queries x keys
// attended x heads x head_dim forward, 2.5x that backward).
struct AttentionKernel {
  enum class Pass : uint8_t { kForward, kBackward };
  double flops = 0;
  double bytes = 0;        // Q, K, V read and O written (their gradients backward)
  int64_t head_dim = 128;  // of the q.k product per head
  int64_t span = 0;        // keys one query reaches at most: the sequence, or the window
  bool causal = true;
  Pass pass = Pass::kForward;
  DType dtype = DType::kBf16;
};

class ComputeCostModel {
 public:
  virtual ~ComputeCostModel() = default;

  // One GEMM C[m,n] = A[m,k] * B[k,n] (2*m*n*k FLOPs), operands in `dtype`.
  virtual double gemm_seconds(int64_t m, int64_t n, int64_t k, DType dtype) const = 0;

  // A grouped GEMM (one launch): group g multiplies an [m_per_group[g], k]
  // matrix by its own [k, n] weight. Groups with m = 0 cost nothing beyond the
  // launch; many tiny groups are slow, which this must reflect.
  virtual double grouped_gemm_seconds(std::span<const int64_t> m_per_group, int64_t n, int64_t k,
                                      DType dtype) const = 0;

  // A memory-bound kernel that reads and writes `bytes` in total (softmax,
  // top-k, permutation, activation, combine, optimizer update, ...).
  virtual double memory_bound_seconds(double bytes) const = 0;

  // A kernel with a known FLOP count and memory traffic that is neither a plain
  // GEMM nor purely memory bound (e.g. fused attention): roofline of the two.
  virtual double fused_kernel_seconds(double flops, double bytes, DType dtype) const = 0;

  // A fused attention kernel. A model without measurements of such kernels
  // prices it as a fused kernel of its FLOPs and bytes, whatever its shape.
  virtual double attention_seconds(const AttentionKernel& kernel) const {
    return fused_kernel_seconds(kernel.flops, kernel.bytes, kernel.dtype);
  }
  // MLA decode attention in its absorbed (multi-query) form: single-token
  // queries of every head read each sequence's latent cache once (FlashMLA's
  // dense decoding kernel; `dtype` is the cache's). Its arithmetic intensity
  // (2 x heads x 1,088 FLOPs per 576 cached elements) sits near the ridge, so
  // neither a prefill-attention curve nor a pure memory rate describes it. A
  // model without a measurement of this kernel prices it as a fused kernel.
  virtual double mla_decode_seconds(double flops, double bytes, DType dtype) const {
    return fused_kernel_seconds(flops, bytes, dtype);
  }

  // The weight gradient of a linear layer with `in` input and `out` output
  // features over `tokens` tokens: dW[in, out] accumulated over the tokens
  // (the same 2 * tokens * in * out FLOPs as its forward GEMM, but reduced
  // over the token dimension and accumulated into an FP32 gradient:
  // Megatron-Core's gradient-accumulation fusion, DeepGEMM's
  // wgrad_gemm_fp8_fp8_fp32_nt). A model without a measurement of such
  // kernels prices it as the forward GEMM.
  virtual double wgrad_gemm_seconds(int64_t tokens, int64_t out, int64_t in, DType dtype) const {
    return gemm_seconds(tokens, out, in, dtype);
  }
  // The same for a group of experts in one launch, group g over
  // tokens_per_group[g] tokens (DeepGEMM's k_grouped_wgrad_gemm_fp8_fp8_fp32_nt).
  virtual double grouped_wgrad_gemm_seconds(std::span<const int64_t> tokens_per_group, int64_t out,
                                            int64_t in, DType dtype) const {
    return grouped_gemm_seconds(tokens_per_group, out, in, dtype);
  }

  virtual double launch_overhead_seconds() const = 0;

  // Quantizing `elements` BF16 values to FP8 with one FP32 scale per 128 of
  // them, the fine-grained casts in front of an FP8 GEMM (DeepSeek-V3 report
  // 3.3.2; SGLang per_token_group_quant_fp8, DeepSeek's training trace
  // per_token_cast_to_fp8 / per_channel_cast_and_transpose): one pass reading
  // 2 bytes and writing 1 + 4/128 per element.
  double fp8_cast_seconds(double elements) const {
    return elements > 0 ? memory_bound_seconds(elements * (2 + 1 + 4.0 / 128)) : 0;
  }
};

}  // namespace moesim::hw
