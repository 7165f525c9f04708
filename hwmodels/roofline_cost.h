#pragma once
// Compute costs from a GPU's datasheet: a roofline with efficiency factors.
//
//   time = max(flops / (peak x gemm_efficiency x shape_efficiency),
//              bytes / (hbm x memory_efficiency)) + launch overhead
//
// shape_efficiency captures why tiny GEMMs are slow: tensor-core tiles are
// padded (M, N, K rounded up to 64) and small dimensions leave most of the
// GPU's SMs idle, modelled as the saturation curve x / (x + 128) per dimension
// (a 4,096-wide dimension runs at 97%, a 64-token expert at 33%). It is why
// skewed routing and many small experts cost more than their FLOPs say.

#include "hwmodels/compute_cost.h"
#include "hwmodels/gpu.h"

namespace moesim::hw {

class RooflineCostModel : public ComputeCostModel {
 public:
  explicit RooflineCostModel(const GpuSpec& gpu) : gpu_(gpu) {}

  double gemm_seconds(int64_t m, int64_t n, int64_t k, DType dtype) const override;
  double grouped_gemm_seconds(std::span<const int64_t> m_per_group, int64_t n, int64_t k,
                              DType dtype) const override;
  double memory_bound_seconds(double bytes) const override;
  double fused_kernel_seconds(double flops, double bytes, DType dtype) const override;
  double launch_overhead_seconds() const override { return gpu_.launch_overhead_s; }

  // The GEMM's compute time without the launch, for composing grouped GEMMs.
  double gemm_body_seconds(int64_t m, int64_t n, int64_t k, DType dtype) const;

 private:
  double peak(DType dtype) const;
  GpuSpec gpu_;
};

}  // namespace moesim::hw
