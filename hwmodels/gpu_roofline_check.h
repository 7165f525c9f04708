#pragma once
// How far the roofline (RooflineCostModel: peak x gemm_efficiency x the
// small-GEMM saturation curve) is from each measured point of a GPU
// calibration table. Backs `moesim validate gpu-calibration`.
//
// Both sides are kernel times without the launch overhead (the sources time
// the kernel alone): the roofline's GEMM body for each group, and its fused
// kernel time minus the launch for attention, on FlashAttention's benchmark
// shape (batch = 16384 / seq_len, heads = 2048 / head_dim; the throughput does
// not depend on them in either model).

#include <string>
#include <vector>

#include "hwmodels/gpu.h"
#include "hwmodels/gpu_calibration.h"

namespace moesim::hw {

struct RooflineCheckRow {
  std::string kind;         // "gemm", "grouped_gemm", "attention" or "mla_decode"
  std::string source;       // the table's source id
  std::string measured_on;  // from the source
  std::string shape;        // e.g. "m=64 n=2112 k=7168", "4x m=8192 n=4096 k=7168 (contiguous)"
  DType dtype = DType::kBf16;
  double published_flops_per_s = 0;
  double roofline_flops_per_s = 0;
  // roofline / published - 1: > 0 when the roofline is optimistic.
  double roofline_error() const { return roofline_flops_per_s / published_flops_per_s - 1; }
};

struct RooflineCheck {
  std::string gpu;                                 // preset whose roofline was evaluated
  std::string calibration;                         // table origin
  std::vector<RooflineCheckRow> rows;              // gemm, grouped_gemm, attention, mla_decode
  double median_abs_error = 0, max_abs_error = 0;  // over all rows
};

// The roofline of `gpu` against every point of `table`.
// REQUIRES: `table` has at least one point.
RooflineCheck check_roofline(const GpuSpec& gpu, const GpuCalibration& table);

}  // namespace moesim::hw
