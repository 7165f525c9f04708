#include "hwmodels/roofline_cost.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "sim/core/error.h"

namespace moesim::hw {
namespace {

constexpr double kTile = 64;
constexpr double kHalfSaturation = 128;

double padded(int64_t x) {
  return std::ceil(static_cast<double>(x) / kTile) * kTile;
}
// A dimension below one tile is already charged a whole tile by padded();
// its under-fill of the GPU is that of one tile, not of its own size (else a
// decode GEMM of one row would pay for 64 padded rows and again for 1/129
// saturation, ~8000x its weight-read time).
double saturation(int64_t x) {
  const double filled = std::max(static_cast<double>(x), kTile);
  return filled / (filled + kHalfSaturation);
}

}  // namespace

double RooflineCostModel::peak(DType dtype) const {
  const double p = gpu_.peak(dtype);
  if (p <= 0) {
    throw Error(fmt::format("{} has no {} throughput in its preset", gpu_.name, dtype_name(dtype)));
  }
  return p;
}

double RooflineCostModel::gemm_body_seconds(int64_t m, int64_t n, int64_t k, DType dtype) const {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  const double flops = 2 * padded(m) * padded(n) * padded(k);
  const double eff = gpu_.gemm_efficiency * saturation(m) * saturation(n) * saturation(k);
  const double compute = flops / (peak(dtype) * eff);
  const double bytes =
      bytes_per_element(dtype) *
      (static_cast<double>(m) * k + static_cast<double>(k) * n + static_cast<double>(m) * n);
  return std::max(compute, bytes / (gpu_.hbm_bytes_per_s * gpu_.memory_efficiency));
}

double RooflineCostModel::gemm_seconds(int64_t m, int64_t n, int64_t k, DType dtype) const {
  return gemm_body_seconds(m, n, k, dtype) + gpu_.launch_overhead_s;
}

double RooflineCostModel::grouped_gemm_seconds(std::span<const int64_t> m_per_group, int64_t n,
                                               int64_t k, DType dtype) const {
  // One launch; each group is a GEMM of its own size (its own tiles and
  // weight reads). Groups run back to back on the whole GPU.
  double s = gpu_.launch_overhead_s;
  for (int64_t m : m_per_group) s += gemm_body_seconds(m, n, k, dtype);
  return s;
}

double RooflineCostModel::memory_bound_seconds(double bytes) const {
  if (bytes <= 0) return 0;
  return bytes / (gpu_.hbm_bytes_per_s * gpu_.memory_efficiency) + gpu_.launch_overhead_s;
}

double RooflineCostModel::fused_kernel_seconds(double flops, double bytes, DType dtype) const {
  if (flops <= 0 && bytes <= 0) return 0;
  // Fused attention reaches a lower fraction of peak than plain GEMMs (softmax
  // and masking between the matmuls): 80% of the GEMM efficiency.
  const double compute = flops / (peak(dtype) * gpu_.gemm_efficiency * 0.8);
  return std::max(compute, bytes / (gpu_.hbm_bytes_per_s * gpu_.memory_efficiency)) +
         gpu_.launch_overhead_s;
}

}  // namespace moesim::hw
