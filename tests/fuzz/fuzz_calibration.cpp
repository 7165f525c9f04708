// Fuzz target: a calibration table (`moesim calibrate` output) as
// CalibratedCostModel reads it, then priced at shapes on and off its grid.
// Every input must load or throw moesim::Error.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "hwmodels/calibrated_cost.h"
#include "sim/core/config.h"
#include "sim/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const moesim::hw::CalibratedCostModel model(moesim::parse_json(text, "fuzz"), "fuzz");
    using moesim::hw::DType;
    for (int64_t m : {int64_t{0}, int64_t{1}, int64_t{37}, int64_t{4096}, int64_t{1} << 40}) {
      (void)model.gemm_seconds(m, 4096, 1024, DType::kFp32);
    }
    const std::vector<int64_t> groups{0, 1, 300, 70000};
    (void)model.grouped_gemm_seconds(groups, 512, 2048, DType::kBf16);
    for (double bytes : {0.0, 1.0, 1e6, 1e15}) (void)model.memory_bound_seconds(bytes);
    (void)model.fused_kernel_seconds(1e9, 1e6, DType::kBf16);
  } catch (const moesim::Error&) {
  }
  return 0;
}
