#include "hwmodels/gpu.h"

#include "hwmodels/presets.h"

namespace moesim::hw {
namespace {

constexpr double kBytesPerMib = 1024.0 * 1024.0;

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
    g.peak_flops[static_cast<size_t>(t)] = peak.number_or(key, 0, 0, 1e6) * 1e12;
  }
  peak.finish();
  if (g.peak(DType::kBf16) <= 0) {
    throw_config_error(join_path(path, "peak_tflops.bf16"), "expected a positive number");
  }
  if (o.has("hbm_gb")) {
    throw_config_error(o.field_path("hbm_gb"),
                       "replaced by \"hbm_mib\": the HBM the device exposes, in MiB, as nvidia-smi "
                       "reports it (H100 SXM 80GB: 81559)");
  }
  g.hbm_bytes = o.number("hbm_mib", 1, 1e9) * kBytesPerMib;
  g.hbm_bytes_per_s = o.number("hbm_gb_per_s", 1e-3, 1e7) * 1e9;
  g.launch_overhead_s = o.number_or("launch_overhead_us", 4, 0, 1e6) * 1e-6;
  g.gemm_efficiency = o.number_or("gemm_efficiency", 0.7, 1e-3, 1);
  g.memory_efficiency = o.number_or("memory_efficiency", 0.8, 1e-3, 1);
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

}  // namespace moesim::hw
