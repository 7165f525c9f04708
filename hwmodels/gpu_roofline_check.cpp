#include "hwmodels/gpu_roofline_check.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "hwmodels/roofline_cost.h"

namespace moesim::hw {
namespace {

// FlashAttention's benchmark shape (benchmarks/benchmark_flash_attention.py):
// 16k tokens per batch, hidden size 2048.
constexpr int64_t kAttentionTokens = 16384;
constexpr int64_t kAttentionHidden = 2048;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

RooflineCheck check_roofline(const GpuSpec& gpu, const GpuCalibration& table) {
  const RooflineCostModel roofline(gpu);
  RooflineCheck out;
  out.gpu = gpu.name;
  out.calibration = table.origin;
  auto measured_on = [&](const std::string& source) {
    return table.sources.at(source).measured_on;
  };
  // GEMMs against the roofline of the same FLOPs; a weight gradient (m input
  // and n output features, k tokens) as the [k, m] x [m, n] GEMM.
  auto gemm_rows = [&](const std::vector<GemmPoint>& points, const char* kind) {
    for (const GemmPoint& p : points) {
      const bool wgrad = p.layout == "wgrad" || p.layout == "k_grouped";
      const double s = p.groups * (wgrad ? roofline.gemm_body_seconds(p.k, p.n, p.m, p.dtype)
                                         : roofline.gemm_body_seconds(p.m, p.n, p.k, p.dtype));
      const std::string shape =
          p.layout == "dense" || p.layout == "wgrad"
              ? fmt::format("m={} n={} k={}", p.m, p.n, p.k)
              : fmt::format("{}x m={} n={} k={} ({})", p.groups, p.m, p.n, p.k, p.layout);
      out.rows.push_back(
          {kind, p.source, measured_on(p.source), shape, p.dtype, p.flops_per_s, p.flops() / s});
    }
  };
  gemm_rows(table.gemm, "gemm");
  gemm_rows(table.grouped_gemm, "grouped_gemm");
  gemm_rows(table.wgrad_gemm, "wgrad_gemm");
  gemm_rows(table.grouped_wgrad_gemm, "grouped_wgrad_gemm");
  for (const AttentionPoint& p : table.attention) {
    AttentionShape shape;
    shape.seq_len = p.seq_len;
    shape.batch = std::max<int64_t>(1, kAttentionTokens / p.seq_len);
    shape.head_dim = p.head_dim;
    shape.heads = std::max<int64_t>(1, kAttentionHidden / p.head_dim);
    shape.causal = p.causal;
    shape.dtype = p.dtype;
    const double s = roofline.fused_kernel_seconds(shape.flops(), shape.bytes(), p.dtype) -
                     roofline.launch_overhead_seconds();
    out.rows.push_back(
        {"attention", p.source, measured_on(p.source),
         fmt::format(
             "seq={} head_dim={}{} {}{}", p.seq_len, p.head_dim,
             p.value_head_dim != p.head_dim ? fmt::format("/{}", p.value_head_dim) : std::string(),
             p.causal ? "causal" : "non-causal", p.backward ? " backward" : ""),
         p.dtype, p.flops_per_s, shape.flops() / s});
  }
  if (table.mla_decode) {
    // The compute-bound figure only: its roofline rate is the fused kernel's
    // with negligible traffic (the memory-bound one is a bandwidth, not FLOPs).
    const MlaDecodePoint& p = *table.mla_decode;
    const double flops = 1e12;
    const double s =
        roofline.fused_kernel_seconds(flops, 1.0, p.dtype) - roofline.launch_overhead_seconds();
    out.rows.push_back({"mla_decode", p.source, measured_on(p.source),
                        "compute-bound (MQA form, head_dim 576/512)", p.dtype, p.flops_per_s,
                        flops / s});
  }
  std::vector<double> abs_error;
  for (const RooflineCheckRow& r : out.rows) abs_error.push_back(std::abs(r.roofline_error()));
  out.median_abs_error = median(abs_error);
  out.max_abs_error = *std::max_element(abs_error.begin(), abs_error.end());
  return out;
}

}  // namespace moesim::hw
