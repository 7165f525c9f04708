// check_roofline: the roofline's throughput per table point, against closed
// forms of RooflineCostModel (peak x gemm_efficiency x x/(x+128) per padded
// dimension; attention at 80% of that, or HBM-bound), and its error sign.

#include <cmath>

#include <catch2/catch.hpp>

#include "hwmodels/gpu.h"
#include "hwmodels/gpu_calibration.h"
#include "hwmodels/gpu_roofline_check.h"

using moesim::Json;
using namespace moesim::hw;

namespace {

Json table_with(Json gemm, Json attention) {
  Json j = {{"format", "moesim-gpu-calibration"}, {"version", 1}, {"applies_to", {"h100-sxm"}}};
  j["sources"] = {{"bench", {{"url", "https://example.org"}, {"measured_on", "H100 SXM"}}}};
  j["gemm"] = std::move(gemm);
  j["attention"] = std::move(attention);
  return j;
}

}  // namespace

TEST_CASE("roofline check: closed forms for a GEMM and for attention, error sign") {
  const GpuSpec gpu = resolve_gpu(Json("h100-sxm"), "gpu");
  const Json gemm = Json::array({{{"source", "bench"},
                                  {"dtype", "bf16"},
                                  {"m", 4096},
                                  {"n", 4096},
                                  {"k", 4096},
                                  {"tflops", 700}}});
  const Json attention = Json::array({{{"source", "bench"},
                                       {"pass", "forward"},
                                       {"dtype", "bf16"},
                                       {"head_dim", 128},
                                       {"causal", false},
                                       {"seq_len", 4096},
                                       {"tflops", 500}},
                                      {{"source", "bench"},
                                       {"pass", "forward"},
                                       {"dtype", "bf16"},
                                       {"head_dim", 128},
                                       {"causal", true},
                                       {"seq_len", 512},
                                       {"tflops", 300}}});
  const RooflineCheck check =
      check_roofline(gpu, parse_gpu_calibration(table_with(gemm, attention), "t.json"));
  REQUIRE(check.rows.size() == 3);
  CHECK(check.gpu == "h100-sxm");
  // 4096 is a whole number of 64-wide tiles; compute-bound (0.22 ms of math against
  // 0.04 ms of HBM traffic): 989 TFLOPS x 0.7 x (4096/4224)^3 = 631 TFLOPS.
  const double gemm_tflops = 989 * 0.7 * std::pow(4096.0 / (4096 + 128), 3);
  CHECK(check.rows[0].kind == "gemm");
  CHECK(check.rows[0].roofline_flops_per_s / 1e12 == Approx(gemm_tflops));
  CHECK(check.rows[0].roofline_error() == Approx(gemm_tflops / 700 - 1));
  CHECK(check.rows[0].measured_on == "H100 SXM");
  // Non-causal 4096: intensity 4096 / 2 bytes = 2048 FLOP/byte, compute-bound at 80% of
  // the GEMM efficiency: 989 x 0.7 x 0.8 = 553.84 TFLOPS, above the 500 published.
  CHECK(check.rows[1].roofline_flops_per_s / 1e12 == Approx(553.84));
  CHECK(check.rows[1].roofline_error() > 0);
  // Causal 512: intensity 512 x 0.5 / 2 = 128 FLOP/byte, HBM-bound at 3.35 TB/s x 0.8:
  // 128 x 2.68e12 = 343.04 TFLOPS.
  CHECK(check.rows[2].roofline_flops_per_s / 1e12 == Approx(343.04));
  CHECK(check.rows[2].roofline_error() == Approx(343.04 / 300 - 1));
  CHECK(check.max_abs_error == Approx(343.04 / 300 - 1));
  CHECK(check.median_abs_error == Approx(553.84 / 500 - 1));
}

TEST_CASE("roofline check of the shipped table: one row per point, DeepGEMM on its own shapes") {
  const GpuSpec gpu = resolve_gpu(Json("h800"), "gpu");
  const auto table = builtin_gpu_calibration("h800");
  REQUIRE(table.has_value());
  const RooflineCheck check = check_roofline(gpu, *table);
  CHECK(check.rows.size() == table->gemm.size() + table->grouped_gemm.size() +
                                 table->wgrad_gemm.size() + table->grouped_wgrad_gemm.size() +
                                 table->attention.size() + 1);
  // The MLA decode kernel's compute-bound figure, against the fused-kernel
  // roofline: 989 x 0.7 x 0.8 = 553.84 TFLOPS for FlashMLA's 660.
  const RooflineCheckRow& mla = check.rows.back();
  CHECK(mla.kind == "mla_decode");
  CHECK(mla.published_flops_per_s == 660e12);
  CHECK(mla.roofline_flops_per_s / 1e12 == Approx(553.84));
  CHECK(check.rows.front().shape == "m=64 n=2112 k=7168");
  CHECK(check.rows.front().published_flops_per_s == 206e12);
  CHECK(check.rows.front().measured_on == "H800 SXM5, NVCC 12.8");
  for (const RooflineCheckRow& r : check.rows) {
    CHECK(r.roofline_flops_per_s > 0);
    CHECK(std::abs(r.roofline_error()) <= check.max_abs_error);
  }
}
