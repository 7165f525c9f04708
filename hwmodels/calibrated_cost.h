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
// Calibration JSON (fields required unless marked optional, unknown fields rejected):
// {
//   "format": "moesim-calibration", "version": 1,
//   "device": "cpu" | "cuda" (`moesim calibrate --device cuda`),
//   "machine": { free-form description object },
//   "units": { field path -> unit, in words },          // optional, not read
//   "peak_gemm_flops_per_s": <large square GEMM of the primary dtype>,
//   "launch_overhead_s": <per-call overhead: a 1x1x1 GEMM (cpu), an empty kernel (cuda)>,
//   "gemm": { "dtype": "fp32" | "tf32" | "bf16" | "fp16" | "fp8",   // the primary table
//             "m": [...], "n": [...], "k": [...],
//             "flops_per_s": [[[...]]]   // [im][in][ik], grids ascending },
//   "gemm_by_dtype": [ tables as "gemm", one per other dtype ],   // optional
//   "memory_bound": { "bytes": [...], "bytes_per_s": [...], "samples": {...} },
//   "grouped_gemm": { measured grouped GEMMs next to this model's price },  // optional, not read
//   "not_measured": { what was not timed -> why },      // optional, not read
//   "timing": { how the points were timed and their spread }   // optional, not read
// }
// A GEMM in a dtype is priced from that dtype's table, else from the primary
// one: the CPU measures only "fp32" (the reference kernel computes in FP32
// whatever the storage type); a GPU measures the dtypes it runs.
// Throughputs are the fastest of several interleaved rounds (see
// kern::time_interleaved): on a shared machine that is the estimate other
// processes disturb least.

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

  // Interpolated achieved GEMM throughput at (m, n, k): in the primary table,
  // or in `dtype`'s own table where there is one.
  double gemm_flops_per_s(int64_t m, int64_t n, int64_t k) const;
  double gemm_flops_per_s(int64_t m, int64_t n, int64_t k, DType dtype) const;
  double peak_gemm_flops_per_s() const { return peak_flops_per_s_; }
  const std::string& device() const { return device_; }
  // The dtypes with a table of their own, the primary first.
  std::vector<DType> gemm_dtypes() const;

  // One GEMM table: throughput over an (m, n, k) grid, in log space.
  struct GemmTable {
    DType dtype = DType::kFp32;
    std::vector<double> log_m, log_n, log_k;
    std::vector<double> log_flops;  // [im][in][ik] flattened
  };

 private:
  const GemmTable& table_for(DType dtype) const;

  std::string device_;
  double peak_flops_per_s_ = 0;
  double launch_overhead_s_ = 0;
  std::vector<GemmTable> gemm_;                    // [0]: the primary table
  std::optional<LogLogCurve> memory_bytes_per_s_;  // set by the constructor
};

}  // namespace moesim::hw
