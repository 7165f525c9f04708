// run_gpu_calibration on a fake timer with closed-form kernel times (no GPU):
// the tables hold exactly those times as throughputs, CalibratedCostModel
// prices each dtype from its own table, points the GPU cannot run are removed
// a grid line at a time and listed, the fastest interleaved sample is the
// estimate and the spread is reported.

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "hwmodels/calibrated_cost.h"
#include "hwmodels/kernels/calibration.h"
#include "hwmodels/kernels/gpu_timer.h"
#include "sim/core/error.h"

using moesim::Json;
using moesim::hw::CalibratedCostModel;
using moesim::hw::DType;
using namespace moesim::kern;

namespace {

double rate_flops_per_s(DType dtype) {
  switch (dtype) {
    case DType::kBf16:
    case DType::kFp16:
      return 400e12;
    case DType::kTf32:
      return 200e12;
    case DType::kFp32:
      return 50e12;
    case DType::kFp8:
      return 800e12;
  }
  return 1;
}

// Seconds per call of each operation, as the fake GPU runs it.
double closed_form_s(const GpuOp& op) {
  switch (op.kind) {
    case GpuOpKind::kGemm:
      return op.flops() / rate_flops_per_s(op.dtype) + 2e-6;
    case GpuOpKind::kGroupedGemm:
      return op.flops() / (2 * rate_flops_per_s(op.dtype)) + 2e-6;
    case GpuOpKind::kCopy:
      return static_cast<double>(op.bytes) / 2e12 + 2e-6;
    case GpuOpKind::kEmptyKernel:
      return 3e-6;
  }
  return 0;
}

class FakeTimer : public GpuTimer {
 public:
  // Sample j of a prepared op (j = 0: the warm-up) takes its closed-form time
  // times 1 + noise[j % noise.size()].
  std::vector<double> noise = {0.0};
  // Why an op cannot run ("" when it can).
  std::function<std::string(const GpuOp&)> refuse = [](const GpuOp&) { return std::string(); };
  // Every sample of every batch: (batch, op index, calls).
  std::vector<std::tuple<int, size_t, int>> samples;
  std::vector<std::vector<GpuOp>> batches;

  GpuDescription describe() override {
    GpuDescription d;
    d.name = "Fake GPU";
    d.compute_capability_major = 9;
    d.l2_cache_bytes = 50 << 20;
    return d;
  }
  std::string unsupported(const GpuOp& op) override { return refuse(op); }
  void prepare(std::span<const GpuOp> ops) override {
    for (const GpuOp& op : ops) REQUIRE(refuse(op).empty());
    batches.emplace_back(ops.begin(), ops.end());
    sampled_.assign(ops.size(), 0);
  }
  double sample_seconds(size_t index, int calls) override {
    REQUIRE(index < batches.back().size());
    samples.emplace_back(static_cast<int>(batches.size()) - 1, index, calls);
    const double factor = 1 + noise[sampled_[index]++ % noise.size()];
    return calls * closed_form_s(batches.back()[index]) * factor;
  }

 private:
  std::vector<size_t> sampled_;
};

GpuCalibrationOptions quick() {
  GpuCalibrationOptions opt;
  opt.quick = true;
  return opt;
}

std::vector<std::string> table_dtypes(const nlohmann::ordered_json& j) {
  std::vector<std::string> out = {j["gemm"]["dtype"].get<std::string>()};
  for (const auto& t : j["gemm_by_dtype"]) out.push_back(t["dtype"].get<std::string>());
  return out;
}

}  // namespace

TEST_CASE("GPU calibration: closed-form kernel times come back as per-dtype tables") {
  FakeTimer timer;
  timer.refuse = [](const GpuOp& op) {
    return op.dtype == DType::kFp8 && op.m < 16 ? std::string("no FP8 kernel below 16 rows (fake)")
                                                : std::string();
  };
  const nlohmann::ordered_json j = run_gpu_calibration(timer, quick());
  CHECK(j["format"] == "moesim-calibration");
  CHECK(j["device"] == "cuda");
  CHECK(j["machine"]["gpu"] == "Fake GPU");
  CHECK(j["units"]["gemm.flops_per_s"] == "FLOP/s: 2*m*n*k / seconds per call");
  // BF16 is the primary table; FP16 is not timed (it runs at BF16's rate).
  CHECK(table_dtypes(j) == std::vector<std::string>{"bf16", "tf32", "fp32", "fp8"});
  CHECK(j["not_measured"].contains("fp16 gemm"));
  CHECK(j["not_measured"].contains("attention"));

  // FP8: the refused rows m = 1..8 are removed as whole grid lines, n >= 16.
  const auto& fp8 = j["gemm_by_dtype"][2];
  CHECK(fp8["m"].front() == 16);
  CHECK(fp8["n"].front() == 32);
  CHECK(j["not_measured"]["fp8 gemm grid lines"] ==
        "removed m=1, m=2, m=4, m=8 (first unrunnable point m=1 n=32 k=256: no FP8 kernel below "
        "16 rows (fake))");
  CHECK(j["gemm"]["m"].front() == 1);
  CHECK(j["gemm"]["n"].front() == 8);

  // The model prices each dtype from its own table, exactly at grid points;
  // FP16 from the primary (BF16) table.
  const CalibratedCostModel model(Json(j), "fake");
  CHECK(model.device() == "cuda");
  CHECK(model.gemm_dtypes() ==
        std::vector<DType>{DType::kBf16, DType::kTf32, DType::kFp32, DType::kFp8});
  for (DType dtype : {DType::kBf16, DType::kTf32, DType::kFp32, DType::kFp8, DType::kFp16}) {
    for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{16, 32, 256},
                           {4096, 8192, 8192},
                           {256, 4096, 1024}}) {
      GpuOp op;
      op.dtype = dtype;
      op.m = m;
      op.n = n;
      op.k = k;
      CHECK(model.gemm_seconds(m, n, k, dtype) == Approx(closed_form_s(op)).epsilon(1e-12));
    }
  }
  CHECK(model.gemm_seconds(1, 8, 256, DType::kFp16) ==
        Approx(2.0 * 8 * 256 / 400e12 + 2e-6).epsilon(1e-12));

  CHECK(j["peak_gemm_flops_per_s"].get<double>() ==
        Approx(2.0 * 8192 * 8192 * 8192 / (2.0 * 8192 * 8192 * 8192 / 400e12 + 2e-6)));
  CHECK(j["machine"]["peak_gemm"]["dtype"] == "bf16");
  CHECK(model.launch_overhead_seconds() == Approx(3e-6));

  // Copies of 64 KiB .. 256 MiB: bandwidth = bytes / time, as the model reads it.
  const auto& mem = j["memory_bound"];
  CHECK(mem["bytes"].front() == 1 << 16);
  CHECK(mem["bytes"].back() == 1 << 28);
  for (size_t i = 0; i < mem["bytes"].size(); ++i) {
    const double bytes = mem["bytes"][i].get<double>();
    CHECK(model.memory_bound_seconds(bytes) == Approx(bytes / 2e12 + 2e-6).epsilon(1e-12));
  }

  // Grouped GEMMs: measured, and the sum of the groups' GEMMs beside them.
  const auto& points = j["grouped_gemm"]["points"];
  REQUIRE(points.size() == 8);
  for (const auto& p : points) {
    GpuOp op;
    op.kind = GpuOpKind::kGroupedGemm;
    op.groups = p["groups"];
    op.m = p["m_per_group"];
    op.n = p["n"];
    op.k = p["k"];
    CHECK(p["seconds"].get<double>() == Approx(closed_form_s(op)).epsilon(1e-12));
    const std::vector<int64_t> ms(op.groups, op.m);
    CHECK(p["sum_of_gemms_seconds"].get<double>() ==
          Approx(model.grouped_gemm_seconds(ms, op.n, op.k, DType::kBf16)));
  }
}

TEST_CASE("GPU calibration: interleaved rounds, fastest sample, spread reported") {
  FakeTimer timer;
  // Warm-up slowed 9x; then rounds at +50%, +0%, +100%.
  timer.noise = {8.0, 0.5, 0.0, 1.0};
  const nlohmann::ordered_json j = run_gpu_calibration(timer, quick());
  const CalibratedCostModel model(Json(j), "fake");
  GpuOp op;
  op.m = 64;
  op.n = 1024;
  op.k = 2048;
  CHECK(model.gemm_seconds(64, 1024, 2048, DType::kBf16) == Approx(closed_form_s(op)));
  CHECK(j["timing"]["gemm_rounds"] == 3);
  for (const char* dtype : {"bf16", "tf32", "fp32"}) {
    CHECK(j["timing"]["gemm_spread"][dtype]["median"].get<double>() == Approx(0.5));
    CHECK(j["timing"]["gemm_spread"][dtype]["max"].get<double>() == Approx(0.5));
  }
  CHECK(j["timing"]["memory_bound_spread"]["median"].get<double>() == Approx(0.5));

  // The first batch (BF16 grid): one warm-up sample per point, then 3 rounds
  // that each take every point once, in order.
  const size_t points = timer.batches[0].size();
  std::vector<std::pair<size_t, int>> first_batch;
  for (const auto& [batch, index, calls] : timer.samples) {
    if (batch == 0) first_batch.emplace_back(index, calls);
  }
  REQUIRE(first_batch.size() == 4 * points);
  for (size_t s = 0; s < first_batch.size(); ++s) {
    CHECK(first_batch[s].first == s % points);
    if (s < points) CHECK(first_batch[s].second == 1);
  }
  // A sample lasts about 1 ms: a 2 us call is repeated (warm-up 9x slower).
  CHECK(first_batch[points].second > 1);
}

TEST_CASE("GPU calibration: dtypes the GPU cannot run are listed with the reason") {
  FakeTimer timer;
  timer.refuse = [](const GpuOp& op) {
    return op.dtype == DType::kFp8 ? std::string("FP8 needs compute capability 8.9 (fake)")
                                   : std::string();
  };
  GpuCalibrationOptions opt;
  opt.smoke = true;
  const nlohmann::ordered_json j = run_gpu_calibration(timer, opt);
  CHECK(table_dtypes(j) == std::vector<std::string>{"bf16", "tf32", "fp32"});
  CHECK(j["not_measured"]["fp8 gemm"] ==
        "m=1 n=512 k=256: FP8 needs compute capability 8.9 (fake)");

  // Without BF16 the primary table is TF32.
  timer.refuse = [](const GpuOp& op) {
    const bool gemm = op.kind == GpuOpKind::kGemm || op.kind == GpuOpKind::kGroupedGemm;
    return gemm && (op.dtype == DType::kBf16 || op.dtype == DType::kFp8) ? std::string("no (fake)")
                                                                         : std::string();
  };
  const nlohmann::ordered_json tf32 = run_gpu_calibration(timer, opt);
  CHECK(table_dtypes(tf32) == std::vector<std::string>{"tf32", "fp32"});
  CHECK(tf32["machine"]["peak_gemm"]["dtype"] == "tf32");
  CHECK(tf32["grouped_gemm"]["dtype"] == "tf32");

  timer.refuse = [](const GpuOp& op) {
    return op.kind == GpuOpKind::kGemm ? std::string("no GEMMs (fake)") : std::string();
  };
  CHECK_THROWS_WITH(run_gpu_calibration(timer, opt),
                    Catch::StartsWith("cuda: the GPU runs no BF16, TF32 or FP32 GEMM"));
}
