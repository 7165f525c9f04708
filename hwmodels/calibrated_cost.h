#pragma once
// A ComputeCostModel driven by measured tables: the calibration JSON that
// `moesim calibrate` writes.
//
// GEMM time comes from achieved throughput measured over a grid of
// (m = tokens per expert, n, k), interpolated trilinearly in log space
// (log m, log n, log k -> log FLOP/s; hwmodels/log_interpolation.h) and held
// constant beyond the grid's edges. Because the grid starts at m = 1 the model reproduces the
// collapse of throughput for tiny GEMMs: a grouped GEMM is priced as the sum of its groups, so many
// small experts (or a skewed routing) cost more than one large GEMM of the same FLOPs. Memory-bound
// kernels use a measured bandwidth-vs-size table, interpolated in log bytes.
//
// Calibration JSON (all fields required, unknown fields rejected):
// {
//   "format": "moesim-calibration", "version": 1, "device": "cpu",
//   "machine": { free-form description object },
//   "peak_gemm_flops_per_s": <large square SGEMM>,
//   "launch_overhead_s": <per-call overhead of a 1x1x1 GEMM>,
//   "gemm": { "dtype": "fp32", "m": [...], "n": [...], "k": [...],
//             "flops_per_s": [[[...]]]   // [im][in][ik], grids ascending },
//   "memory_bound": { "bytes": [...], "bytes_per_s": [...], "samples": {...} },
//   "timing": { how the points were timed and their spread }   // optional, not read
// }
// Throughputs are the fastest of several interleaved rounds (see
// kern::time_interleaved): on a shared machine that is the estimate other
// processes disturb least.
// Only the "fp32" GEMM table is measured on the CPU; other dtypes use it too
// (the reference kernel computes in FP32 whatever the storage type).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hwmodels/compute_cost.h"
#include "hwmodels/log_interpolation.h"
#include "sim/core/config.h"

namespace moesim::hw {

class CalibratedCostModel : public ComputeCostModel {
 public:
  // Validates `calibration` (errors name the JSON path, prefixed by `source`).
  CalibratedCostModel(const Json& calibration, const std::string& source);
  // Reads and validates a calibration file.
  static CalibratedCostModel from_file(const std::string& path);

  double gemm_seconds(int64_t m, int64_t n, int64_t k, DType dtype) const override;
  double grouped_gemm_seconds(std::span<const int64_t> m_per_group, int64_t n, int64_t k,
                              DType dtype) const override;
  double memory_bound_seconds(double bytes) const override;
  double fused_kernel_seconds(double flops, double bytes, DType dtype) const override;
  double launch_overhead_seconds() const override { return launch_overhead_s_; }

  // Interpolated achieved GEMM throughput at (m, n, k).
  double gemm_flops_per_s(int64_t m, int64_t n, int64_t k) const;
  double peak_gemm_flops_per_s() const { return peak_flops_per_s_; }
  const std::string& device() const { return device_; }

 private:
  std::string device_;
  double peak_flops_per_s_ = 0;
  double launch_overhead_s_ = 0;
  std::vector<double> log_m_, log_n_, log_k_;
  std::vector<double> log_flops_;                  // [im][in][ik] flattened
  std::optional<LogLogCurve> memory_bytes_per_s_;  // set by the constructor
};

}  // namespace moesim::hw
