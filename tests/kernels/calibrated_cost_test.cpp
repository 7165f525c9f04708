// CalibratedCostModel on hand-made tables: exact at grid points, log-space
// interpolation between them, constant throughput beyond the edges, small
// groups priced at their own (low) efficiency, and strict input checking.

#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "hwmodels/calibrated_cost.h"
#include "sim/core/error.h"

using moesim::Json;
using moesim::hw::CalibratedCostModel;
using moesim::hw::DType;

namespace {

// Throughput grows with m: 1e9 at m=1, 1e11 at m=100 (per (n,k) the same,
// except n=1000 is twice as fast).
Json table() {
  Json j = {{"format", "moesim-calibration"},
            {"version", 1},
            {"device", "cpu"},
            {"machine", {{"cpu", "test"}}},
            {"peak_gemm_flops_per_s", 2e11},
            {"launch_overhead_s", 1e-7}};
  j["gemm"] = {{"dtype", "fp32"},
               {"m", {1, 100}},
               {"n", {100, 1000}},
               {"k", {100, 1000}},
               {"flops_per_s", {{{1e9, 1e9}, {2e9, 2e9}}, {{1e11, 1e11}, {2e11, 2e11}}}}};
  j["memory_bound"] = {{"bytes", {1e3, 1e6}}, {"bytes_per_s", {1e9, 1e10}}};
  return j;
}

}  // namespace

TEST_CASE("calibrated GEMM cost: grid points exact, log-space interpolation, clamped edges") {
  const CalibratedCostModel model(table(), "calib.json");
  CHECK(model.gemm_flops_per_s(1, 100, 100) == Approx(1e9));
  CHECK(model.gemm_flops_per_s(100, 1000, 1000) == Approx(2e11));
  // m = 10 is halfway between 1 and 100 in log space: geometric mean 1e10.
  CHECK(model.gemm_flops_per_s(10, 100, 100) == Approx(1e10));
  // Beyond the grid throughput is held: m = 1000 runs at the m = 100 rate.
  CHECK(model.gemm_flops_per_s(1000, 100, 100) == Approx(1e11));
  CHECK(model.gemm_seconds(1000, 100, 100, DType::kFp32) == Approx(2.0 * 1000 * 100 * 100 / 1e11));
  CHECK(model.gemm_seconds(0, 100, 100, DType::kFp32) == 0.0);
}

TEST_CASE("grouped GEMM: many tiny groups cost more than one group of the same FLOPs") {
  const CalibratedCostModel model(table(), "calib.json");
  const std::vector<int64_t> one_big = {100, 0, 0, 0};
  const std::vector<int64_t> tiny(100, 1);
  const double big_s = model.grouped_gemm_seconds(one_big, 100, 100, DType::kFp32);
  const double tiny_s = model.grouped_gemm_seconds(tiny, 100, 100, DType::kFp32);
  CHECK(big_s == Approx(2.0 * 100 * 100 * 100 / 1e11));  // empty groups are free
  CHECK(tiny_s == Approx(100 * 2.0 * 100 * 100 / 1e9));
  CHECK(tiny_s / big_s == Approx(100.0));
}

TEST_CASE("memory-bound and fused kernels use the bandwidth table and the peak") {
  const CalibratedCostModel model(table(), "calib.json");
  CHECK(model.memory_bound_seconds(1e3) == Approx(1e-6));
  CHECK(model.memory_bound_seconds(1e6) == Approx(1e-4));
  // 10^4.5 bytes sit halfway in log space: bandwidth 10^9.5, time 1e-5 s.
  CHECK(model.memory_bound_seconds(std::pow(10.0, 4.5)) == Approx(1e-5));
  CHECK(model.memory_bound_seconds(0) == 0.0);
  CHECK(model.fused_kernel_seconds(2e11, 1e3, DType::kBf16) == Approx(1.0));
  CHECK(model.fused_kernel_seconds(1.0, 1e6, DType::kFp32) == Approx(1e-4));
  CHECK(model.launch_overhead_seconds() == 1e-7);
}

TEST_CASE("bad calibration files are one-line errors naming the JSON path") {
  Json j = table();
  j["gemm"]["m"] = {100, 1};
  CHECK_THROWS_WITH(CalibratedCostModel(j, "c.json"),
                    Catch::Contains("c.json.gemm.m[1]: values must be strictly ascending"));
  j = table();
  j["gemm"]["flops_per_s"][1][0] = {1e9};
  CHECK_THROWS_WITH(CalibratedCostModel(j, "c.json"),
                    Catch::Contains("c.json.gemm.flops_per_s[1][0]: expected an array of 2"));
  j = table();
  j["gemm"]["flops_per_s"][0][0][0] = -1;
  CHECK_THROWS_AS(CalibratedCostModel(j, "c.json"), moesim::Error);
  j = table();
  j["extra"] = 1;
  CHECK_THROWS_WITH(CalibratedCostModel(j, "c.json"), Catch::Contains("extra: unknown field"));
  j = table();
  j["format"] = "other";
  CHECK_THROWS_WITH(CalibratedCostModel(j, "c.json"), Catch::Contains("format"));
  CHECK_THROWS_AS(CalibratedCostModel::from_file("/nonexistent/calib.json"), moesim::Error);
}

TEST_CASE("per-dtype GEMM tables: each dtype priced from its own, the rest from the primary") {
  Json j = table();
  j["device"] = "cuda";
  j["gemm"]["dtype"] = "bf16";
  // FP32 runs at a tenth of the primary (BF16) table's throughput.
  Json fp32 = j["gemm"];
  fp32["dtype"] = "fp32";
  for (auto& plane : fp32["flops_per_s"]) {
    for (auto& row : plane) {
      for (auto& x : row) x = x.get<double>() / 10;
    }
  }
  j["gemm_by_dtype"] = Json::array({fp32});
  j["units"] = {{"gemm.flops_per_s", "FLOP/s"}};
  j["not_measured"] = {{"fp8 gemm", "no FP8 tensor cores"}};
  j["grouped_gemm"] = {{"points", Json::array()}};
  const CalibratedCostModel model(j, "calib.json");
  CHECK(model.gemm_dtypes() == std::vector<DType>{DType::kBf16, DType::kFp32});
  CHECK(model.gemm_flops_per_s(100, 1000, 1000) == Approx(2e11));
  CHECK(model.gemm_flops_per_s(100, 1000, 1000, DType::kFp32) == Approx(2e10));
  CHECK(model.gemm_seconds(100, 100, 100, DType::kFp32) == Approx(2e6 / 1e10));
  CHECK(model.gemm_seconds(100, 100, 100, DType::kBf16) == Approx(2e6 / 1e11));
  // No FP8 or TF32 table: the primary one prices them.
  CHECK(model.gemm_seconds(100, 100, 100, DType::kFp8) == Approx(2e6 / 1e11));
  CHECK(model.gemm_seconds(100, 100, 100, DType::kTf32) == Approx(2e6 / 1e11));

  Json twice = j;
  twice["gemm_by_dtype"].push_back(fp32);
  CHECK_THROWS_WITH(
      CalibratedCostModel(twice, "c.json"),
      Catch::Contains("c.json.gemm_by_dtype[1].dtype: a second fp32 table (one per dtype)"));
  twice["gemm_by_dtype"] = Json::array({j["gemm"]});
  CHECK_THROWS_WITH(CalibratedCostModel(twice, "c.json"),
                    Catch::Contains("gemm_by_dtype[0].dtype: a second bf16 table"));
  Json bad = j;
  bad["gemm_by_dtype"][0]["dtype"] = "int4";
  CHECK_THROWS_WITH(CalibratedCostModel(bad, "c.json"),
                    Catch::Contains("c.json.gemm_by_dtype[0].dtype"));
  bad = j;
  bad["gemm_by_dtype"] = fp32;
  CHECK_THROWS_WITH(CalibratedCostModel(bad, "c.json"),
                    Catch::Contains("c.json.gemm_by_dtype: expected an array of GEMM tables"));
  bad = j;
  bad["gemm_by_dtype"][0]["flops_per_s"][0] = Json::array();
  CHECK_THROWS_WITH(CalibratedCostModel(bad, "c.json"),
                    Catch::Contains("c.json.gemm_by_dtype[0].flops_per_s[0]: expected an array"));
  bad = j;
  bad["gemm_by_dtype"][0]["peak"] = 1;
  CHECK_THROWS_WITH(CalibratedCostModel(bad, "c.json"),
                    Catch::Contains("gemm_by_dtype[0].peak: unknown field"));
}
