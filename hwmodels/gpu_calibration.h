#pragma once
// GPU compute priced from kernel measurements: calibration tables of achieved
// throughput (published kernel benchmarks shipped in hwmodels/calibration/, or
// a user's file), and the ComputeCostModel that reads them.
//
// Table JSON ("moesim-gpu-calibration", version 1; unknown fields rejected):
// {
//   "format": "moesim-gpu-calibration", "version": 1,
//   "applies_to": ["h100-sxm", "h800"],     // GPU preset names the points hold for
//   "applies_to_note": "why",                // optional
//   "sources": { "<id>": { "url": ..., "measured_on": ..., free-form strings } },
//   "gemm": [ {"source", "dtype", "m", "n", "k", "tflops", "gb_per_s"?}, ... ],
//   "grouped_gemm": [ {"source", "layout": "contiguous"|"masked", "dtype", "groups",
//                      "m_per_group", "n", "k", "tflops", "gb_per_s"?}, ... ],
//   "attention": [ {"source", "pass": "forward"|"backward", "dtype", "head_dim",
//                   "value_head_dim"?, "causal", "seq_len", "tflops"}, ... ],
//   "wgrad_gemm": [ {"source", "dtype", "m", "n", "k", "tflops", "gb_per_s"?}, ... ],
//   "grouped_wgrad_gemm": [ {"source", "dtype", "groups", "m", "n", "k_per_group",
//                            "tflops", "gb_per_s"?}, ... ],
//   "memory_bound": { "bytes": [...], "bytes_per_s": [...] },  // optional
//   "mla_decode": {"source", "dtype", "tflops", "gb_per_s"}     // optional
// }
// TFLOPS are the source's own figures (kernel time, launch excluded); the FLOP
// counts are 2*groups*m*n*k for GEMMs and FlashAttention's
// 4*batch*seq_len^2*heads*head_dim, halved with the causal mask (2.5x that for
// a backward pass; value_head_dim, default head_dim, for MLA's narrower v).
//
// How the model uses the points: published points do not form a grid (each
// source measures a handful of (n, k) shapes at a few m), so a point set is
// read as curves. GEMMs: one curve of throughput over m for each (dtype, n, k);
// grouped GEMMs: over m_per_group for each (dtype, n, k), both layouts on one
// curve (the masked benchmark fills every group, so it times the same work as
// the contiguous one); attention: over seq_len for each (dtype, head_dim,
// value_head_dim, causal, pass). Along a curve the throughput is interpolated
// in log-log space (hwmodels/log_interpolation.h), so every point is
// reproduced exactly.
//
// Attention kernels (attention_seconds): the forward reads the curves of
// heads as wide in q.k as in v (MHA/GQA, FlashAttention's benchmark) for the
// kernel's head_dim, interpolated in log-log space between the measured head
// dims on either side (the nearest one beyond them), at the keys a query
// reaches (the sequence, or a window); beyond a curve's lengths its nearest
// end holds, as FlashAttention-3's rate is flat by 16k (602 -> 616 TFLOPS from
// 8k to 16k, causal, head_dim 128) and a window of a few hundred keys gives
// each query tile as few key tiles as the shortest sequence measured. The
// backward is the forward's rate times the backward/forward ratio of a shape
// measured both ways (cuDNN's SDPA for DeepSeek-V3, Megatron-Core MoE report
// Table 9: 422/553 at 4,096, 523/638 at 16,384), at the same length: no
// source publishes backward rates for the forward curves' shapes on the
// kernel Megatron-Core trains with. A table without such a pair prices the
// backward at the forward's rate.
//
// Weight-gradient GEMMs, in DeepGEMM's wgrad convention: dW[m, n] += A[m, k]
// B[n, k]^T with m the layer's input features, n its output features and k
// the tokens (per group for the K-grouped MoE kernel): one curve over k for
// each (dtype, m, n). Token counts outside a curve's range take its nearest
// end's rate: the kernel and the output it accumulates are the same, and its
// measured rate moves slowly with k (939 to 1,044 TFLOPS from 4,096 to 8,192
// tokens per expert), whereas the forward kernel of the same shape runs
// 15-35% faster. A weight gradient whose shape has no curve is priced as its
// forward GEMM, as ComputeCostModel's default does.
//
// MLA decode: the kernel's published compute-bound and memory-bound rates (two
// figures, not a curve), combined as a roofline of the two for the KV-cache
// dtype they were measured with.
//
// Fallback: an operation whose discrete key has no curve, or whose size lies
// outside its curve's measured range, is priced by the roofline
// (RooflineCostModel of the same GPU), except where the paragraphs above hold
// a curve's end (weight gradients, attention kernels) or read between
// measured head dims. Beyond those, nothing is extrapolated: a published
// figure says nothing about shapes it did not measure. A dtype without points
// of its own uses the points of a dtype with the same element size and the
// same peak on this GPU (BF16 <-> FP16 on Hopper), since those run on the same
// tensor-core path at the same rate.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "hwmodels/compute_cost.h"
#include "hwmodels/gpu.h"
#include "hwmodels/log_interpolation.h"
#include "hwmodels/roofline_cost.h"
#include "sim/core/config.h"

namespace moesim::hw {

// One measured GEMM launch: `groups` GEMMs of [m, k] x [k, n] (groups = 1 and
// layout "dense" for a plain GEMM).
struct GemmPoint {
  std::string source;  // key into GpuCalibration::sources
  std::string layout;  // "dense", "contiguous" or "masked"
  DType dtype = DType::kBf16;
  int64_t groups = 1, m = 0, n = 0, k = 0;
  double flops_per_s = 0;
  double bytes_per_s = 0;  // the source's memory-throughput figure; 0 if not given
  double flops() const { return 2.0 * groups * static_cast<double>(m) * n * k; }
};

// One measured fused-attention pass (FlashAttention's benchmark setup).
struct AttentionPoint {
  std::string source;
  DType dtype = DType::kBf16;
  int64_t head_dim = 0, value_head_dim = 0, seq_len = 0;
  bool causal = false;
  bool backward = false;
  double flops_per_s = 0;
};

// An MLA decoding kernel's best rates, each from the source's own benchmark.
struct MlaDecodePoint {
  std::string source;
  DType dtype = DType::kBf16;  // of the KV cache the kernel reads
  double flops_per_s = 0;      // in its compute-bound configuration
  double bytes_per_s = 0;      // in its memory-bound configuration
};

struct GpuCalibrationSource {
  std::string url, measured_on;
  Json fields;  // everything the file says about the source
};

// A validated calibration table.
struct GpuCalibration {
  std::string origin;                   // file name or "built-in <file>"
  std::vector<std::string> applies_to;  // GPU preset names
  std::map<std::string, GpuCalibrationSource> sources;
  std::vector<GemmPoint> gemm, grouped_gemm;
  // Weight gradients: m = input features, n = output features, k = tokens
  // (per group); layout "wgrad" or "k_grouped".
  std::vector<GemmPoint> wgrad_gemm, grouped_wgrad_gemm;
  std::vector<AttentionPoint> attention;
  std::optional<LogLogCurve> memory_bytes_per_s;  // over bytes moved
  std::optional<MlaDecodePoint> mla_decode;
};

// Validates a table; errors name the JSON path (prefixed by `origin`), and a
// point that duplicates another names both.
GpuCalibration parse_gpu_calibration(const Json& table, const std::string& origin);

// The shipped table whose applies_to lists `gpu_name`; nullopt if none does.
std::optional<GpuCalibration> builtin_gpu_calibration(const std::string& gpu_name);
// GPU preset names that have a shipped table.
std::vector<std::string> builtin_gpu_calibration_names();

// The shape of a fused self-attention forward, as FlashAttention measures it.
struct AttentionShape {
  int64_t batch = 1, heads = 1, head_dim = 128, seq_len = 0;
  bool causal = true;
  DType dtype = DType::kBf16;
  double flops() const;  // 4*batch*seq_len^2*heads*head_dim, halved if causal
  double bytes() const;  // Q, K, V read and O written once: 4*batch*seq_len*heads*head_dim*elt
  AttentionKernel kernel() const;  // its forward, spanning the whole sequence
};

class GpuCalibratedCostModel : public ComputeCostModel {
 public:
  GpuCalibratedCostModel(const GpuSpec& gpu, const GpuCalibration& calibration);

  // ComputeCostModel: from the tables where a curve covers the operation, the
  // roofline otherwise; the GPU preset's launch overhead is added per launch
  // either way (the published times exclude it).
  double gemm_seconds(int64_t m, int64_t n, int64_t k, DType dtype) const override;
  double grouped_gemm_seconds(std::span<const int64_t> m_per_group, int64_t n, int64_t k,
                              DType dtype) const override;
  double memory_bound_seconds(double bytes) const override;
  // Only FLOPs and bytes, no shape: the roofline (attention kernels, whose
  // shape sets their rate, go through attention_seconds).
  double fused_kernel_seconds(double flops, double bytes, DType dtype) const override;
  // From the curves as the header describes; the roofline where no curve of
  // the dtype (or one at the same rate) and mask exists.
  double attention_seconds(const AttentionKernel& kernel) const override;
  // max(flops / compute rate, bytes / memory rate) of the table's MLA decode
  // kernel when `dtype` runs at its rate, the roofline otherwise.
  double mla_decode_seconds(double flops, double bytes, DType dtype) const override;
  // From the wgrad tables where a curve covers the shape and token count, as
  // the forward GEMM (gemm_seconds / the grouped forward rate) otherwise.
  double wgrad_gemm_seconds(int64_t tokens, int64_t out, int64_t in, DType dtype) const override;
  double grouped_wgrad_gemm_seconds(std::span<const int64_t> tokens_per_group, int64_t out,
                                    int64_t in, DType dtype) const override;
  double launch_overhead_seconds() const override { return gpu_.launch_overhead_s; }

  // Throughput the tables give (nullopt: not covered, the roofline prices it).
  std::optional<double> gemm_flops_per_s(int64_t m, int64_t n, int64_t k, DType dtype) const;
  std::optional<double> grouped_gemm_flops_per_s(int64_t m_per_group, int64_t n, int64_t k,
                                                 DType dtype) const;
  // The rate attention_seconds prices a kernel at (nullopt: the roofline).
  std::optional<double> attention_flops_per_s(
      int64_t head_dim, bool causal, int64_t span, DType dtype,
      AttentionKernel::Pass pass = AttentionKernel::Pass::kForward) const;
  std::optional<double> wgrad_gemm_flops_per_s(int64_t tokens, int64_t out, int64_t in,
                                               DType dtype) const;
  std::optional<double> grouped_wgrad_gemm_flops_per_s(int64_t tokens_per_group, int64_t out,
                                                       int64_t in, DType dtype) const;

 private:
  // (dtype, two discrete sizes) -> curve over the continuous size.
  using CurveKey = std::tuple<DType, int64_t, int64_t>;
  using Curves = std::map<CurveKey, LogLogCurve>;
  // `hold_ends`: outside a curve's measured range, its nearest end's value
  // rather than nothing.
  std::optional<double> lookup(const Curves& curves, int64_t a, int64_t b, double x, DType dtype,
                               bool hold_ends = false) const;

  GpuSpec gpu_;
  RooflineCostModel roofline_;
  // Attention curves: (dtype, head_dim, value_head_dim, causal, backward).
  using AttentionKey = std::tuple<DType, int64_t, int64_t, bool, bool>;
  using AttentionCurves = std::map<AttentionKey, LogLogCurve>;
  // The forward rate over the MHA/GQA curves of one dtype and mask; nullopt
  // without any.
  std::optional<double> attention_forward_rate(DType dtype, int64_t head_dim, bool causal,
                                               double span) const;
  // backward / forward rate at `span` of the first shape measured both ways
  // in `dtype` or a dtype at the same rate, with the kernel's mask if one is,
  // else with the other.
  std::optional<double> attention_backward_ratio(DType dtype, bool causal, double span) const;

  Curves gemm_, grouped_;
  AttentionCurves attention_;
  Curves wgrad_, grouped_wgrad_;  // key: (dtype, input features, output features)
  std::optional<LogLogCurve> memory_bytes_per_s_;
  std::optional<MlaDecodePoint> mla_decode_;
};

// The compute cost model a scenario asks for:
//   ""        -> the roofline of `gpu` (RooflineCostModel);
//   "builtin" -> the shipped table for `gpu` (error naming the GPUs that have one);
//   "auto"    -> the shipped table if there is one for `gpu`, else the roofline
//                (a default that uses the tables where they exist);
//   a path    -> that file: "moesim-gpu-calibration" tables as above, or a
//                "moesim-calibration" grid from `moesim calibrate`
//                (CalibratedCostModel).
// Errors are moesim::Error naming the file or field.
std::unique_ptr<ComputeCostModel> make_compute_cost(const GpuSpec& gpu,
                                                    const std::string& calibration);

}  // namespace moesim::hw
