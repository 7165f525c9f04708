// `moesim calibrate --device cuda`: GPU kernel tables in CalibratedCostModel's
// format, timed through a GpuTimer (calibration.h says what is measured).

#include <algorithm>
#include <chrono>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "hwmodels/calibrated_cost.h"
#include "hwmodels/kernels/calibration.h"
#include "sim/core/error.h"

namespace moesim::kern {
namespace {

using hw::DType;
using Clock = std::chrono::steady_clock;
using Say = std::function<void(const std::string&)>;

// Calls per sample at most: a sample of the shortest kernels (a few
// microseconds each) still lasts about a millisecond.
constexpr int kMaxCallsPerSample = 1000;

struct Settings {
  int rounds = 1;
  double sample_target_s = 0;
};

Settings settings_of(const GpuCalibrationOptions& opt) {
  // A GPU is rarely shared the way the development CPU is, so samples of 1-2
  // ms (tens of event resolutions, 0.5 us) suffice; rounds as on the CPU.
  if (opt.smoke) return {1, 0.0};
  if (opt.quick) return {3, 1e-3};
  return {5, 2e-3};
}

// Dtypes timed, in table order; the primary one ("gemm") is the first of
// kPrimaryOrder that the GPU runs. FP16 is not timed: on Ampere and Hopper it
// runs at BF16's tensor-core rate, and the model prices dtypes without a table
// of their own from the primary table. FP8 is never primary: its table would
// price every BF16 GEMM and fused kernel twice as fast.
constexpr DType kTimedDtypes[] = {DType::kBf16, DType::kTf32, DType::kFp32, DType::kFp8};
constexpr DType kPrimaryOrder[] = {DType::kBf16, DType::kTf32, DType::kFp32};

std::string name_of(DType dtype) {
  return std::string(hw::dtype_name(dtype));
}

struct GemmAxes {
  std::vector<int64_t> m, n, k;
};

// m spans one token to a long micro-batch, n and k the catalog's hidden,
// expert-FFN (2*ffn for the fused gate|up) and attention projection sizes,
// and the router (n = experts). Beyond the grid the model holds throughput.
GemmAxes gemm_axes(const GpuCalibrationOptions& opt, DType dtype) {
  GemmAxes a;
  if (opt.smoke) {
    a = {{1, 16, 256}, {8, 512, 2048}, {256, 1024}};
  } else {
    for (int64_t m = 1; m <= 4096; m *= 2) a.m.push_back(m);
    a.n = {8, 32, 128, 256, 512, 1024, 2048, 4096, 8192};
    a.k = {256, 512, 1024, 2048, 4096, 8192};
    if (!opt.quick) {
      a.m.insert(a.m.end(), {8192, 16384});
      a.n.insert(a.n.end(), {16384, 32768});
      a.k.push_back(16384);
    }
  }
  // cuBLASLt's FP8 kernels want 16-element alignment (its n is our n).
  if (dtype == DType::kFp8) std::erase_if(a.n, [](int64_t n) { return n < 16; });
  return a;
}

GpuOp gemm_op(DType dtype, int64_t m, int64_t n, int64_t k) {
  GpuOp op;
  op.kind = GpuOpKind::kGemm;
  op.dtype = dtype;
  op.m = m;
  op.n = n;
  op.k = k;
  return op;
}

std::vector<GpuOp> grid_ops(DType dtype, const GemmAxes& a) {
  std::vector<GpuOp> ops;
  for (int64_t m : a.m) {
    for (int64_t n : a.n) {
      for (int64_t k : a.k) ops.push_back(gemm_op(dtype, m, n, k));
    }
  }
  return ops;
}

// The largest grid of points `timer` runs: grid lines (one value of m, n or
// k) are removed one at a time, the line the most unrunnable points share
// first (ties: m before n before k, smaller values first). `removed` names
// them; `reason` is why the first unrunnable point cannot run.
struct RunnableGrid {
  GemmAxes axes;
  std::vector<std::string> removed;
  std::string reason;
};

RunnableGrid runnable_grid(GpuTimer& timer, DType dtype, const GemmAxes& axes) {
  using Point = std::tuple<int64_t, int64_t, int64_t>;
  std::vector<Point> bad;
  RunnableGrid out{axes, {}, {}};
  for (const GpuOp& op : grid_ops(dtype, axes)) {
    std::string why = timer.unsupported(op);
    if (why.empty()) continue;
    if (out.reason.empty()) out.reason = fmt::format("m={} n={} k={}: {}", op.m, op.n, op.k, why);
    bad.emplace_back(op.m, op.n, op.k);
  }
  std::vector<int64_t>* lines[3] = {&out.axes.m, &out.axes.n, &out.axes.k};
  auto kept = [](const std::vector<int64_t>& v, int64_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  while (true) {
    std::map<std::pair<int, int64_t>, int> share;  // (axis, value) -> unrunnable points on it
    for (const auto& [m, n, k] : bad) {
      if (!kept(out.axes.m, m) || !kept(out.axes.n, n) || !kept(out.axes.k, k)) continue;
      ++share[{0, m}];
      ++share[{1, n}];
      ++share[{2, k}];
    }
    if (share.empty()) break;
    const auto worst =
        std::max_element(share.begin(), share.end(), [](const auto& x, const auto& y) {
          return x.second < y.second;  // the first of equal counts wins
        });
    const auto [axis, value] = worst->first;
    std::erase(*lines[axis], value);
    out.removed.push_back(fmt::format("{}={}", "mnk"[axis], value));
  }
  return out;
}

std::vector<TimedCase> time_batch(GpuTimer& timer, std::span<const GpuOp> ops,
                                  const Settings& settings) {
  timer.prepare(ops);
  return time_interleaved_samples(
      ops.size(), settings.rounds, settings.sample_target_s, kMaxCallsPerSample,
      [&](size_t i, int calls) { return timer.sample_seconds(i, calls); });
}

std::vector<double> spreads_of(const std::vector<TimedCase>& timed) {
  std::vector<double> s;
  for (const TimedCase& t : timed) s.push_back(t.spread());
  return s;
}

// One dtype's table: {"dtype", "m", "n", "k", "flops_per_s"[im][in][ik]}.
nlohmann::ordered_json gemm_table(DType dtype, const GemmAxes& a,
                                  const std::vector<TimedCase>& timed) {
  auto table = nlohmann::ordered_json::array();
  size_t i = 0;
  for (int64_t m : a.m) {
    auto plane = nlohmann::ordered_json::array();
    for (int64_t n : a.n) {
      auto row = nlohmann::ordered_json::array();
      for (int64_t k : a.k) row.push_back(gemm_op(dtype, m, n, k).flops() / timed[i++].min_s);
      plane.push_back(std::move(row));
    }
    table.push_back(std::move(plane));
  }
  return {{"dtype", name_of(dtype)}, {"m", a.m}, {"n", a.n}, {"k", a.k}, {"flops_per_s", table}};
}

struct GemmResults {
  std::vector<nlohmann::ordered_json> tables;  // in kTimedDtypes order
  std::vector<DType> dtypes;                   // of each table
  nlohmann::ordered_json spreads = nlohmann::ordered_json::object();
};

GemmResults measure_gemm_grids(GpuTimer& timer, const GpuCalibrationOptions& opt,
                               const Settings& settings, nlohmann::ordered_json& not_measured,
                               const Say& say) {
  GemmResults r;
  for (DType dtype : kTimedDtypes) {
    const std::string key = name_of(dtype) + " gemm";
    const RunnableGrid grid = runnable_grid(timer, dtype, gemm_axes(opt, dtype));
    if (grid.axes.m.empty() || grid.axes.n.empty() || grid.axes.k.empty()) {
      not_measured[key] = grid.reason;
      continue;
    }
    if (!grid.removed.empty()) {
      not_measured[key + " grid lines"] = fmt::format("removed {} (first unrunnable point {})",
                                                      fmt::join(grid.removed, ", "), grid.reason);
    }
    const std::vector<GpuOp> ops = grid_ops(dtype, grid.axes);
    say(fmt::format("gemm {}: {} points x {} interleaved rounds", name_of(dtype), ops.size(),
                    settings.rounds));
    const std::vector<TimedCase> timed = time_batch(timer, ops, settings);
    r.tables.push_back(gemm_table(dtype, grid.axes, timed));
    r.dtypes.push_back(dtype);
    const std::vector<double> spreads = spreads_of(timed);
    r.spreads[name_of(dtype)] = spread_summary(spreads);
  }
  return r;
}

// Copies of 64 KiB .. 256 MiB (1 GiB without --quick), bytes read + written.
nlohmann::ordered_json measure_memory_bound(GpuTimer& timer, const GpuCalibrationOptions& opt,
                                            const Settings& settings,
                                            nlohmann::ordered_json& spread) {
  std::vector<int64_t> sizes;
  if (opt.smoke) {
    sizes = {int64_t{1} << 16, int64_t{1} << 20};
  } else {
    for (int64_t b = int64_t{1} << (opt.quick ? 16 : 14);
         b <= (int64_t{1} << (opt.quick ? 28 : 30)); b *= 4) {
      sizes.push_back(b);
    }
  }
  std::vector<GpuOp> ops;
  for (int64_t b : sizes) {
    GpuOp op;
    op.kind = GpuOpKind::kCopy;
    op.bytes = b;
    ops.push_back(op);
  }
  const std::vector<TimedCase> timed = time_batch(timer, ops, settings);
  std::vector<double> bytes_per_s;
  auto samples = nlohmann::ordered_json::array();
  for (size_t i = 0; i < sizes.size(); ++i) {
    bytes_per_s.push_back(static_cast<double>(sizes[i]) / timed[i].min_s);
    samples.push_back({{"bytes", sizes[i]}, {"seconds", timed[i].min_s}});
  }
  spread = spread_summary(spreads_of(timed));
  return {{"bytes", sizes}, {"bytes_per_s", bytes_per_s}, {"samples", {{"copy", samples}}}};
}

// Expert GEMMs of catalog models (workloads/models/), groups = experts per
// rank: DeepSeek-V3 (hidden 7168, expert FFN 2048) at EP32, gate|up and down;
// Qwen3-235B-A22B (4096, 1536) at EP8, gate|up; OLMoE-1B-7B (2048, 1024) on
// one GPU, gate|up. m_per_group = tokens routed to each expert.
std::vector<GpuOp> grouped_ops(const GpuCalibrationOptions& opt, DType dtype) {
  struct Shape {
    int64_t groups, n, k;
    std::vector<int64_t> quick_m, more_m;
  };
  std::vector<Shape> shapes = {{8, 4096, 7168, {128, 1024}, {16, 4096}},
                               {8, 7168, 2048, {128, 1024}, {16, 4096}},
                               {16, 3072, 4096, {64, 512}, {16, 2048}},
                               {64, 2048, 2048, {8, 64}, {256}}};
  if (opt.smoke) shapes = {{4, 512, 256, {16}, {}}};
  std::vector<GpuOp> ops;
  for (const Shape& s : shapes) {
    std::vector<int64_t> ms = s.quick_m;
    if (!opt.quick && !opt.smoke) ms.insert(ms.end(), s.more_m.begin(), s.more_m.end());
    std::sort(ms.begin(), ms.end());
    for (int64_t m : ms) {
      GpuOp op = gemm_op(dtype, m, s.n, s.k);
      op.kind = GpuOpKind::kGroupedGemm;
      op.groups = s.groups;
      ops.push_back(op);
    }
  }
  return ops;
}

// Grouped GEMM points, each with the sum of its groups' GEMMs as `model`
// prices it (CalibratedCostModel::grouped_gemm_seconds).
nlohmann::ordered_json measure_grouped(GpuTimer& timer, const GpuCalibrationOptions& opt,
                                       const Settings& settings, DType dtype,
                                       const hw::CalibratedCostModel& model,
                                       nlohmann::ordered_json& not_measured,
                                       nlohmann::ordered_json& spread) {
  std::vector<GpuOp> ops;
  for (const GpuOp& op : grouped_ops(opt, dtype)) {
    const std::string why = timer.unsupported(op);
    if (why.empty()) {
      ops.push_back(op);
    } else {
      not_measured[fmt::format("grouped_gemm groups={} m_per_group={} n={} k={}", op.groups, op.m,
                               op.n, op.k)] = why;
    }
  }
  auto points = nlohmann::ordered_json::array();
  spread = spread_summary({});
  if (ops.empty()) return {{"dtype", name_of(dtype)}, {"points", points}};
  const std::vector<TimedCase> timed = time_batch(timer, ops, settings);
  for (size_t i = 0; i < ops.size(); ++i) {
    const GpuOp& op = ops[i];
    const std::vector<int64_t> m_per_group(op.groups, op.m);
    const double sum_s = model.grouped_gemm_seconds(m_per_group, op.n, op.k, dtype);
    points.push_back({{"groups", op.groups},
                      {"m_per_group", op.m},
                      {"n", op.n},
                      {"k", op.k},
                      {"seconds", timed[i].min_s},
                      {"flops_per_s", op.flops() / timed[i].min_s},
                      {"sum_of_gemms_seconds", sum_s},
                      {"sum_of_gemms_over_measured", sum_s / timed[i].min_s}});
  }
  spread = spread_summary(spreads_of(timed));
  return {{"dtype", name_of(dtype)},
          {"kernel", "cublasGemmGroupedBatchedEx, one launch, groups of equal shape"},
          {"points", points}};
}

double measure_one(GpuTimer& timer, const GpuOp& op, const Settings& settings) {
  return time_batch(timer, {&op, 1}, settings)[0].min_s;
}

nlohmann::ordered_json describe(GpuTimer& timer) {
  const GpuDescription d = timer.describe();
  return {{"gpu", d.name},
          {"compute_capability",
           fmt::format("{}.{}", d.compute_capability_major, d.compute_capability_minor)},
          {"multiprocessors", d.multiprocessors},
          {"memory_bytes", d.memory_bytes},
          {"l2_cache_bytes", d.l2_cache_bytes},
          {"runtime", d.runtime_version},
          {"driver", d.driver_version},
          {"blas", d.blas_version}};
}

nlohmann::ordered_json units() {
  return {{"peak_gemm_flops_per_s", "FLOP/s (2*m*n*k per second)"},
          {"launch_overhead_s", "seconds per launch of an empty kernel in a stream of them"},
          {"gemm.m", "rows of the activations (tokens)"},
          {"gemm.n", "output features (rows of the [n, k] weight)"},
          {"gemm.k", "input features"},
          {"gemm.flops_per_s", "FLOP/s: 2*m*n*k / seconds per call"},
          {"grouped_gemm.points.seconds", "seconds per launch"},
          {"grouped_gemm.points.flops_per_s", "FLOP/s: 2*groups*m_per_group*n*k / seconds"},
          {"memory_bound.bytes", "bytes read + bytes written per call"},
          {"memory_bound.bytes_per_s", "bytes per second"},
          {"machine.memory_bytes", "bytes"},
          {"machine.l2_cache_bytes", "bytes"},
          {"seconds", "wall-clock seconds the calibration took"}};
}

}  // namespace

nlohmann::ordered_json run_gpu_calibration(GpuTimer& timer, const GpuCalibrationOptions& opt) {
  const auto t_start = Clock::now();
  const Say say = [&](const std::string& s) {
    if (opt.progress) opt.progress(s);
  };
  const Settings settings = settings_of(opt);
  nlohmann::ordered_json out;
  out["format"] = "moesim-calibration";
  out["version"] = 1;
  out["device"] = "cuda";
  out["quick"] = opt.quick;
  out["machine"] = describe(timer);
  out["machine"]["timer"] = "CUDA events around back-to-back launches on one stream";
  out["units"] = units();
  auto not_measured = nlohmann::ordered_json::object();

  GemmResults gemm = measure_gemm_grids(timer, opt, settings, not_measured, say);
  const auto primary_at = std::find_first_of(gemm.dtypes.begin(), gemm.dtypes.end(),
                                             std::begin(kPrimaryOrder), std::end(kPrimaryOrder));
  if (primary_at == gemm.dtypes.end()) {
    throw Error(
        fmt::format("cuda: the GPU runs no BF16, TF32 or FP32 GEMM: {}", not_measured.dump()));
  }
  const DType primary = *primary_at;
  const size_t primary_index = primary_at - gemm.dtypes.begin();

  say("peak and launch overhead");
  const int64_t peak_n = opt.smoke ? 1024 : 8192;
  const GpuOp peak = gemm_op(primary, peak_n, peak_n, peak_n);
  out["peak_gemm_flops_per_s"] = peak.flops() / measure_one(timer, peak, settings);
  out["machine"]["peak_gemm"] = {
      {"dtype", name_of(primary)}, {"m", peak_n}, {"n", peak_n}, {"k", peak_n}};
  GpuOp empty;
  empty.kind = GpuOpKind::kEmptyKernel;
  out["launch_overhead_s"] = measure_one(timer, empty, settings);

  out["gemm"] = gemm.tables[primary_index];
  out["gemm_by_dtype"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < gemm.tables.size(); ++i) {
    if (i != primary_index) out["gemm_by_dtype"].push_back(gemm.tables[i]);
  }

  say("memory-bound: copy kernel");
  auto memory_spread = nlohmann::ordered_json::object();
  out["memory_bound"] = measure_memory_bound(timer, opt, settings, memory_spread);

  say("grouped GEMMs");
  // The tables so far price each grouped point as the sum of its groups.
  const hw::CalibratedCostModel model(Json(out), "the GPU calibration being written");
  auto grouped_spread = nlohmann::ordered_json::object();
  out["grouped_gemm"] =
      measure_grouped(timer, opt, settings, primary, model, not_measured, grouped_spread);

  not_measured["attention"] =
      "not timed: the attention core is priced as a fused kernel (peak_gemm_flops_per_s and "
      "memory_bound here, or the published FlashAttention tables of hwmodels/calibration/); "
      "a cuBLAS attention would time a kernel no training run uses";
  not_measured["fp16 gemm"] =
      "not timed: priced from the primary table (FP16 runs at BF16's tensor-core rate on "
      "Ampere and Hopper)";
  out["not_measured"] = not_measured;
  out["timing"] = {{"statistic", "minimum over interleaved rounds"},
                   {"clock", "CUDA events (device time)"},
                   {"gemm_rounds", settings.rounds},
                   {"sample_target_s", settings.sample_target_s},
                   {"gemm_spread", gemm.spreads},
                   {"grouped_gemm_spread", grouped_spread},
                   {"memory_bound_spread", memory_spread},
                   {"spread_definition", "median / minimum - 1 per point"}};
  out["seconds"] = std::chrono::duration<double>(Clock::now() - t_start).count();
  return out;
}

}  // namespace moesim::kern
