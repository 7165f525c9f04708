#include "hwmodels/gpu.h"

#include "hwmodels/presets.h"

#include <fmt/format.h>

namespace moesim::hw {
namespace {

constexpr double kBytesPerMib = 1024.0 * 1024.0;

// Physical ranges of the fields, wide enough for any accelerator from the
// 2014 K80 (8.7 FP32 TFLOPS, 240 GB/s HBM) to 100x today's B200 (2,250 BF16
// TFLOPS, 8 TB/s, 192 GB), so a typo or a unit slip (1e-300, bits for bytes
// x 1e9) is named at its field instead of surfacing as a clock overflow.
constexpr double kMinPeakTflops = 1, kMaxPeakTflops = 1e5;
constexpr double kMinHbmGb = 1, kMaxHbmGb = 1e5;
constexpr double kMinHbmGbPerS = 10, kMaxHbmGbPerS = 1e6;
// Kernel launches take ~2-10 us on current GPUs; 1 ms is far beyond any.
constexpr double kMaxLaunchOverheadUs = 1000;
constexpr double kMinEfficiency = 0.01;

}  // namespace

GpuSpec resolve_gpu(const Json& value, const std::string& path) {
  const Json doc = resolve_preset_reference("gpu", value, path);
  ConfigObject o(doc, path);
  GpuSpec g;
  g.name = o.string_or("name", "custom-gpu");
  o.string_or("description", "");
  ConfigObject peak = o.object("peak_tflops");
  for (DType t : kAllDTypes) {
    const std::string key(dtype_name(t));
    // 0 (or absent) marks a data type the GPU does not support (A100: fp8).
    const double tflops = peak.number_or(key, 0, 0, kMaxPeakTflops);
    if (tflops != 0 && tflops < kMinPeakTflops) {
      throw_config_error(peak.field_path(key),
                         fmt::format("expected 0 (not supported) or a number in [{}, {}] TFLOPS, "
                                     "got {}",
                                     kMinPeakTflops, kMaxPeakTflops, tflops));
    }
    g.peak_flops[static_cast<size_t>(t)] = tflops * 1e12;
  }
  peak.finish();
  if (g.peak(DType::kBf16) <= 0) {
    throw_config_error(join_path(path, "peak_tflops.bf16"),
                       fmt::format("expected a number in [{}, {}] TFLOPS (every GPU model needs "
                                   "its BF16 peak)",
                                   kMinPeakTflops, kMaxPeakTflops));
  }
  if (o.has("hbm_gb")) {
    throw_config_error(o.field_path("hbm_gb"),
                       "replaced by \"hbm_mib\": the HBM the device exposes, in MiB, as nvidia-smi "
                       "reports it (H100 SXM 80GB: 81559)");
  }
  g.hbm_bytes =
      o.number("hbm_mib", kMinHbmGb * 1e9 / kBytesPerMib, kMaxHbmGb * 1e9 / kBytesPerMib) *
      kBytesPerMib;
  g.hbm_bytes_per_s = o.number("hbm_gb_per_s", kMinHbmGbPerS, kMaxHbmGbPerS) * 1e9;
  g.launch_overhead_s = o.number_or("launch_overhead_us", 4, 0, kMaxLaunchOverheadUs) * 1e-6;
  g.gemm_efficiency = o.number_or("gemm_efficiency", 0.7, kMinEfficiency, 1);
  g.memory_efficiency = o.number_or("memory_efficiency", 0.8, kMinEfficiency, 1);
  g.sms = static_cast<int>(o.integer_or("sms", 0, 0, 100000));
  if (o.has("sources")) {
    for (const auto& [k, v] : o.value("sources").items()) {
      g.sources[k] = v.is_string() ? v.get<std::string>() : v.dump();
    }
  }
  o.finish();
  return g;
}

Json gpu_json(const GpuSpec& g) {
  Json j;
  j["name"] = g.name;
  Json peak;
  for (DType t : kAllDTypes) peak[std::string(dtype_name(t))] = g.peak(t) / 1e12;
  j["peak_tflops"] = peak;
  j["hbm_mib"] = g.hbm_bytes / kBytesPerMib;
  j["hbm_gb_per_s"] = g.hbm_bytes_per_s / 1e9;
  j["launch_overhead_us"] = g.launch_overhead_s * 1e6;
  j["gemm_efficiency"] = g.gemm_efficiency;
  j["memory_efficiency"] = g.memory_efficiency;
  return j;
}

Json gpu_input_json(const GpuSpec& gpu) {
  Json j = gpu_json(gpu);
  if (gpu.sms > 0) j["sms"] = gpu.sms;
  return j;
}

}  // namespace moesim::hw
