// The roofline compute cost model against its closed forms (roofline_cost.h).

#include "hwmodels/roofline_cost.h"

#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "sim/core/error.h"

namespace moesim::hw {
namespace {

GpuSpec test_gpu() {
  GpuSpec g;
  g.name = "test";
  g.peak_flops[static_cast<size_t>(DType::kBf16)] = 1e15;
  g.hbm_bytes_per_s = 2e12;
  g.launch_overhead_s = 5e-6;
  g.gemm_efficiency = 0.8;
  g.memory_efficiency = 0.5;
  return g;
}

double saturation(double x) {
  return x / (x + 128);
}

TEST_CASE("roofline: a large GEMM runs at peak x efficiency x shape saturation", "[hwmodels]") {
  const RooflineCostModel model(test_gpu());
  // 4096^3: tiles already aligned; compute-bound.
  const double n = 4096;
  const double compute = 2 * n * n * n / (1e15 * 0.8 * std::pow(saturation(n), 3));
  CHECK(model.gemm_seconds(4096, 4096, 4096, DType::kBf16) == Approx(compute + 5e-6));
  CHECK(model.gemm_body_seconds(4096, 4096, 4096, DType::kBf16) == Approx(compute));
}

TEST_CASE("roofline: small dimensions pad to 64-wide tiles, and saturate as one tile",
          "[hwmodels]") {
  const RooflineCostModel model(test_gpu());
  // m = 10 pads to 64 in FLOPs and saturates as a 64-row tile (64 / 192),
  // not again as its own 10 rows (a decode GEMM would pay twice).
  const double flops = 2.0 * 64 * 4096 * 4096;
  const double eff = 0.8 * saturation(64) * saturation(4096) * saturation(4096);
  const double compute = flops / (1e15 * eff);
  const double bytes = 2.0 * (10.0 * 4096 + 4096.0 * 4096 + 10.0 * 4096);
  const double memory = bytes / (2e12 * 0.5);
  CHECK(model.gemm_body_seconds(10, 4096, 4096, DType::kBf16) == Approx(std::max(compute, memory)));
  // Below one tile the row count no longer changes the compute term.
  CHECK(model.gemm_body_seconds(1, 4096, 4096, DType::kBf16) <=
        model.gemm_body_seconds(10, 4096, 4096, DType::kBf16));
  CHECK(model.gemm_body_seconds(0, 4096, 4096, DType::kBf16) == 0);
}

TEST_CASE("roofline: memory-bound, grouped and fused kernels", "[hwmodels]") {
  const RooflineCostModel model(test_gpu());
  CHECK(model.memory_bound_seconds(1e9) == Approx(1e9 / 1e12 + 5e-6));
  CHECK(model.memory_bound_seconds(0) == 0);
  // A grouped GEMM is one launch plus each group's body.
  const std::vector<int64_t> m = {256, 0, 1024};
  const double grouped = 5e-6 + model.gemm_body_seconds(256, 2048, 4096, DType::kBf16) +
                         model.gemm_body_seconds(1024, 2048, 4096, DType::kBf16);
  CHECK(model.grouped_gemm_seconds(m, 2048, 4096, DType::kBf16) == Approx(grouped));
  // Fused attention reaches 80% of the GEMM efficiency; roofline of the two.
  CHECK(model.fused_kernel_seconds(1e12, 1e6, DType::kBf16) ==
        Approx(1e12 / (1e15 * 0.8 * 0.8) + 5e-6));
  CHECK(model.fused_kernel_seconds(1e6, 1e10, DType::kBf16) == Approx(1e10 / 1e12 + 5e-6));
}

TEST_CASE("roofline: a data type the GPU lacks is an error naming it", "[hwmodels]") {
  const RooflineCostModel model(test_gpu());
  CHECK_THROWS_AS(model.gemm_seconds(128, 128, 128, DType::kFp8), Error);
}

}  // namespace
}  // namespace moesim::hw
