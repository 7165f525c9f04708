// `moesim calibrate --device cuda --quick` on a real GPU: the table it writes
// loads in CalibratedCostModel and its numbers are physically possible.
// Skipped (exit code 77, the reason printed) without the CUDA module or a GPU.
// Usage: moesim_test_kernels_gpu_calibrate MOESIM_BINARY

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "hwmodels/calibrated_cost.h"
#include "hwmodels/kernels/moe_layer_cuda.h"
#include "sim/core/config.h"
#include "sim/core/error.h"

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAIL", what.c_str());
  if (!ok) ++failures;
}

std::string tflops(double flops_per_s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f TFLOP/s", flops_per_s / 1e12);
  return buf;
}

// Bounds hold for every CUDA GPU cuBLAS supports: dense BF16 peaks run from
// ~100 TFLOP/s (A10) to ~2.5 PFLOP/s (B200), HBM from ~0.6 to ~8 TB/s.
void check_table(const moesim::Json& j, const moesim::hw::CalibratedCostModel& model) {
  using moesim::hw::DType;
  const std::string cc_text = j["machine"]["compute_capability"];
  const double cc = std::stod(cc_text);  // "9.0", "10.0"
  std::printf("gpu: %s (compute capability %s), calibrated in %.1f s\n",
              j["machine"]["gpu"].get<std::string>().c_str(), cc_text.c_str(),
              j["seconds"].get<double>());
  expect(model.device() == "cuda", "device cuda");
  const double peak = model.peak_gemm_flops_per_s();
  expect(peak > 1e12 && peak < 1e16, "primary-dtype peak " + tflops(peak));
  const DType primary = model.gemm_dtypes().front();
  const double big = model.gemm_flops_per_s(4096, 8192, 8192, primary);
  expect(big > 0.2 * peak && big < 1.2 * peak, "4096x8192x8192 near the peak: " + tflops(big));
  // At m = 1 a GEMM streams its weight from HBM (the pool defeats L2).
  const double m1_s = model.gemm_seconds(1, 8192, 8192, primary);
  const double weight_bytes_per_s = 8192.0 * 8192 * bytes_per_element(primary) / m1_s;
  expect(weight_bytes_per_s > 1e11 && weight_bytes_per_s < 1e13,
         "m=1 reads its weight at " + std::to_string(weight_bytes_per_s / 1e9) + " GB/s");
  expect(model.gemm_flops_per_s(4096, 4096, 4096, primary) >
             20 * model.gemm_flops_per_s(1, 4096, 4096, primary),
         "throughput grows with m (m=1 is memory-bound)");
  if (cc >= 8.0) {
    expect(primary == DType::kBf16, "BF16 is the primary table");
    const double tf32 = model.gemm_flops_per_s(4096, 8192, 8192, DType::kTf32);
    const double fp32 = model.gemm_flops_per_s(4096, 8192, 8192, DType::kFp32);
    expect(tf32 > fp32 && big > tf32,
           "BF16 > TF32 > FP32: " + tflops(big) + ", " + tflops(tf32) + ", " + tflops(fp32));
  }
  const bool fp8_table = j["gemm_by_dtype"].dump().find("\"fp8\"") != std::string::npos;
  expect(cc >= 8.9 ? fp8_table : j["not_measured"].contains("fp8 gemm"),
         "FP8 measured exactly where the GPU has FP8 tensor cores");
  const double copy_bw =
      model.memory_bound_seconds(1 << 28) > 0 ? (1 << 28) / model.memory_bound_seconds(1 << 28) : 0;
  expect(copy_bw > 1e11 && copy_bw < 1e13,
         "256 MiB copy at " + std::to_string(copy_bw / 1e9) + " GB/s");
  const double launch = model.launch_overhead_seconds();
  expect(launch > 1e-7 && launch < 1e-4, "launch " + std::to_string(launch * 1e6) + " us");
  for (const auto& p : j["grouped_gemm"]["points"]) {
    expect(p["flops_per_s"].get<double>() < 1.2 * peak, "grouped " + p.dump() + " below the peak");
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace moesim::kern;
  if (argc < 2) {
    std::printf("usage: %s MOESIM_BINARY\n", argv[0]);
    return 2;
  }
  std::string why;
  if (!cuda::module_available(&why)) {
    std::printf("SKIPPED: %s\n", why.c_str());
    return 77;
  }
  if (!cuda::device_available(&why)) {
    std::printf("SKIPPED: no CUDA device on this machine (%s)\n", why.c_str());
    return 77;
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("moesim_gpu_calibrate_" + std::to_string(getpid()) + ".json"))
                               .string();
  const std::string command =
      std::string("'") + argv[1] + "' calibrate --device cuda --quick --quiet -o '" + path + "'";
  const int rc = std::system(command.c_str());
  expect(rc == 0, "calibrate --device cuda --quick exits 0 (" + std::to_string(rc) + ")");
  if (rc == 0) {
    try {
      const moesim::Json j = moesim::load_json_file(path);
      const auto model = moesim::hw::CalibratedCostModel::from_file(path);
      check_table(j, model);
    } catch (const moesim::Error& e) {
      expect(false, std::string("the table loads: ") + e.what());
    }
  }
  std::filesystem::remove(path);
  return failures ? 1 : 0;
}
