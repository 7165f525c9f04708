#pragma once
// A GPU as the cost models see it: dense peak throughput per data type, HBM
// capacity and bandwidth, kernel launch overhead, and the fraction of peak
// that large kernels achieve (calibration refines it per shape).
//
// HBM capacity is what the device exposes to software ("hbm_mib", the total
// nvidia-smi / rocminfo report), not the marketing figure: an "80 GB" H100
// exposes 81559 MiB = 79.6 GiB. The CUDA context, communication buffers and
// allocator slack come off it as options.reserved_memory_gib.

#include <array>
#include <map>
#include <string>

#include "hwmodels/dtype.h"
#include "sim/core/config.h"

namespace moesim::hw {

struct GpuSpec {
  std::string name;
  std::array<double, kAllDTypes.size()> peak_flops{};  // dense FLOP/s per DType; 0 = unsupported
  double hbm_bytes = 0;                                // exposed capacity (bytes)
  double hbm_bytes_per_s = 0;
  double launch_overhead_s = 0;
  double gemm_efficiency = 0;    // of peak, for large GEMMs
  double memory_efficiency = 0;  // of HBM bandwidth, for streaming kernels
  // Streaming multiprocessors (AMD: compute units); 0 = not given. What
  // communication kernels take SMs from (parallel.a2a_comm_sms).
  int sms = 0;
  std::map<std::string, std::string> sources;  // field -> where the number comes from

  double peak(DType t) const { return peak_flops[static_cast<size_t>(t)]; }
};

// `value`: a preset name ("h100-sxm"), or an object {"preset": name, ...fields}
// overriding any field, or a fully inline object. Errors name the JSON path.
GpuSpec resolve_gpu(const Json& value, const std::string& path);
// The spec as reports show it. "sms" is left out: it only matters where
// communication overlaps compute, and the scenario report adds it there.
Json gpu_json(const GpuSpec& gpu);
// The spec in the input format: resolve_gpu() of it gives `gpu` back (less
// its description and sources), so it can be edited and used inline.
Json gpu_input_json(const GpuSpec& gpu);

}  // namespace moesim::hw
