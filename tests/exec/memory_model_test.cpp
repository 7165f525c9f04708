#include "sim/exec/memory_model.h"

#include <catch2/catch.hpp>

#include "hwmodels/gpu.h"
#include "hwmodels/presets.h"
#include "tests/exec/test_costs.h"

namespace moesim::exec {
namespace {

TEST_CASE("weights, gradients and optimizer states per ZeRO stage match hand counts",
          "[exec][memory]") {
  const ModelShape m = testing::tiny_moe(2);
  ParallelConfig p;
  p.dp = 4;
  p.ep = 2;  // expert-data-parallel degree 2
  TrainingWorkload w;
  w.seq_len = 128;
  w.global_batch = 4;
  // Per layer: attention 4M + router 8K dense; 8 experts / ep 2 = 4 local experts.
  const double dense = 2 * (4.0 * 1024 * 1024 + 1024.0 * 8);
  const double experts = 2 * 4 * (3.0 * 1024 * 2048);
  for (int zero : {0, 1, 2, 3}) {
    p.zero_stage = zero;
    const MemoryEstimate est = estimate_memory(m, p, w, {0, 0}, 80e9, 0);
    const MemoryBreakdown& b = est.per_stage[0];
    INFO("zero " << zero);
    const double w_sh = zero >= 3 ? dense / 4 + experts / 2 : dense + experts;
    const double g_sh = zero >= 2 ? dense / 4 + experts / 2 : dense + experts;
    const double o_sh = zero >= 1 ? dense / 4 + experts / 2 : dense + experts;
    CHECK(b.weights_bytes == Approx(2 * w_sh));
    CHECK(b.gradients_bytes == Approx(4 * g_sh));
    CHECK(b.optimizer_bytes == Approx(12 * o_sh));
  }
}

TEST_CASE("1F1B keeps pp - stage micro-batches of activations; recompute shrinks them",
          "[exec][memory]") {
  const ModelShape m = testing::tiny_moe(4);
  ParallelConfig p;
  p.pp = 4;
  TrainingWorkload w;
  w.seq_len = 1024;
  w.global_batch = 16;
  const MemoryEstimate none = estimate_memory(m, p, w, {2048, 2048}, 80e9, 0);
  for (int s = 0; s < 4; ++s) CHECK(none.per_stage[s].inflight_microbatches == 4 - s);
  CHECK(none.per_stage[0].activations_bytes == Approx(4 * none.per_stage[3].activations_bytes));
  p.recompute = Recompute::kSelective;
  const MemoryEstimate sel = estimate_memory(m, p, w, {2048, 2048}, 80e9, 0);
  p.recompute = Recompute::kFull;
  const MemoryEstimate full = estimate_memory(m, p, w, {2048, 2048}, 80e9, 0);
  CHECK(sel.per_stage[0].activations_bytes < none.per_stage[0].activations_bytes);
  CHECK(full.per_stage[0].activations_bytes < sel.per_stage[0].activations_bytes);
  CHECK(full.per_stage[0].routed_tokens_bytes < none.per_stage[0].routed_tokens_bytes);
  CHECK_FALSE(estimate_memory(m, p, w, {2048, 2048}, 1e6, 0).fits());
}

TEST_CASE("GPU presets hold the HBM the device exposes, with its source", "[exec][memory]") {
  constexpr double kMib = 1024.0 * 1024.0;
  // Totals nvidia-smi (rocminfo for MI300X) reports; each preset's
  // sources.hbm_mib names where the figure was published.
  const std::pair<const char*, double> exposed_mib[] = {
      {"h100-sxm", 81559},      {"h800", 81559},  {"h200", 143771},
      {"a100-sxm-80gb", 81920}, {"b200", 183359}, {"mi300x", 196592}};
  for (const auto& [name, mib] : exposed_mib) {
    INFO(name);
    const hw::GpuSpec gpu = hw::resolve_gpu(Json(name), "cluster.gpu");
    CHECK(gpu.hbm_bytes == mib * kMib);
    CHECK(gpu.sources.count("hbm_mib") == 1);
  }
  // An "80 GB" H100 exposes 79.6 GiB, not 80e9 bytes (74.5 GiB).
  CHECK(hw::resolve_gpu(Json("h100-sxm"), "gpu").hbm_bytes / (kMib * 1024) == Approx(79.647));
  // Every preset has a capacity source, so a new preset cannot skip it.
  for (const std::string& name : hw::preset_names("gpu")) {
    INFO(name);
    CHECK(hw::resolve_gpu(Json(name), "gpu").sources.count("hbm_mib") == 1);
  }
  // The old decimal-GB field is refused with what to write instead.
  CHECK_THROWS_WITH(
      hw::resolve_gpu(Json::parse(R"({"preset": "h100-sxm", "hbm_gb": 94})"), "cluster.gpu"),
      Catch::Contains("cluster.gpu.hbm_gb") && Catch::Contains("hbm_mib"));
}

}  // namespace
}  // namespace moesim::exec
