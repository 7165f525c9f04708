#include "hwmodels/kernels/calibration.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <thread>

#include <cblas.h>
#include <fmt/format.h>

#include "hwmodels/kernels/layer_cost.h"
#include "hwmodels/kernels/moe_layer.h"

namespace moesim::kern {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_of(const std::function<void()>& fn) {
  const auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct MemSample {
  std::string step;
  double bytes;
  double seconds;
};

}  // namespace

std::vector<TimedCase> time_interleaved_samples(size_t cases, int rounds, double sample_target_s,
                                                int max_calls, const CaseSampler& sample) {
  std::vector<TimedCase> out(cases);
  for (size_t i = 0; i < cases; ++i) {
    const double first = sample(i, 1);  // warm-up: caches, page faults, library buffers
    out[i].calls = static_cast<int>(std::clamp(std::ceil(sample_target_s / std::max(first, 1e-9)),
                                               1.0, static_cast<double>(std::max(max_calls, 1))));
  }
  std::vector<std::vector<double>> samples(cases);
  for (int r = 0; r < std::max(rounds, 1); ++r) {
    for (size_t i = 0; i < cases; ++i) samples[i].push_back(sample(i, out[i].calls) / out[i].calls);
  }
  for (size_t i = 0; i < cases; ++i) {
    out[i].min_s = *std::min_element(samples[i].begin(), samples[i].end());
    out[i].median_s = median(samples[i]);
  }
  return out;
}

std::vector<TimedCase> time_interleaved(std::span<const std::function<void()>> cases, int rounds,
                                        double sample_target_s) {
  return time_interleaved_samples(cases.size(), rounds, sample_target_s, 10000,
                                  [&](size_t i, int calls) {
                                    return seconds_of([&] {
                                      for (int c = 0; c < calls; ++c) cases[i]();
                                    });
                                  });
}

nlohmann::ordered_json spread_summary(std::span<const double> spreads) {
  if (spreads.empty()) return {{"median", nullptr}, {"max", nullptr}};
  return {{"median", median({spreads.begin(), spreads.end()})},
          {"max", *std::max_element(spreads.begin(), spreads.end())}};
}

std::vector<std::pair<size_t, size_t>> batches_under(std::span<const double> bytes,
                                                     double budget_bytes) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t begin = 0;
  double held = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i > begin && held + bytes[i] > budget_bytes) {
      out.emplace_back(begin, i);
      begin = i;
      held = 0;
    }
    held += bytes[i];
  }
  if (begin < bytes.size()) out.emplace_back(begin, bytes.size());
  return out;
}

double measure_peak_sgemm_flops_per_s(int64_t n, int reps) {
  // OpenBLAS's own threading here: the peak is what the library achieves,
  // the yardstick the reference kernel's split GEMMs are held against.
  const auto a = random_matrix(n, n, 1.0f, 11), b = random_matrix(n, n, 1.0f, 12);
  std::vector<float> c(n * n);
  openblas_set_num_threads(kernel_threads());
  const std::function<void()> square = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n), static_cast<int>(n),
                static_cast<int>(n), 1.0f, a.data(), static_cast<int>(n), b.data(),
                static_cast<int>(n), 0.0f, c.data(), static_cast<int>(n));
  };
  const double s = time_interleaved({&square, 1}, reps, 0.0)[0].min_s;
  openblas_set_num_threads(1);
  return 2.0 * static_cast<double>(n) * n * n / s;
}

nlohmann::ordered_json describe_machine() {
  nlohmann::ordered_json m;
  std::string cpu = "unknown";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  m["cpu"] = cpu;
  m["hardware_threads"] = std::thread::hardware_concurrency();
  m["kernel_threads"] = kernel_threads();
  m["blas"] = fmt::format("OpenBLAS {} ({})", openblas_get_config(), openblas_get_corename());
  return m;
}

namespace {

struct GemmGrid {
  std::vector<int64_t> ms, ns, ks;
};

// Achieved FLOP/s over the grid, all points interleaved round by round.
// Returns the flops_per_s[m][n][k] table and each point's spread.
std::pair<nlohmann::ordered_json, std::vector<double>> measure_gemm_grid(
    const GemmGrid& grid, int rounds, double sample_target_s,
    const std::function<void(const std::string&)>& say) {
  const int64_t max_m = grid.ms.back(), max_n = grid.ns.back(), max_k = grid.ks.back();
  const auto a = random_matrix(max_m, max_k, 1.0f, 21);
  // In the layer every expert multiplies by its own weight, fetched from
  // memory; timing one B over and over would keep it in cache. So each call
  // takes its B at a new place in a pool larger than the last-level cache.
  const int64_t pool = std::max<int64_t>(max_k * max_n, int64_t{96} << 20 >> 2);
  const auto b = random_matrix(pool + max_k * max_n, 1, 1.0f, 22);
  int64_t b_off = 0;
  std::vector<float> c(max_m * max_n);
  std::vector<std::function<void()>> cases;
  for (int64_t m : grid.ms) {
    for (int64_t n : grid.ns) {
      for (int64_t k : grid.ks) {
        // Contiguous operands with the leading dimensions the kernel uses.
        cases.emplace_back([&, m, n, k] {
          b_off = (b_off + n * k + 4096) % pool;
          sgemm(m, n, k, a.data(), b.data() + b_off / 16 * 16, c.data());
        });
      }
    }
  }
  say(fmt::format("gemm: {} points x {} interleaved rounds", cases.size(), rounds));
  const std::vector<TimedCase> timed = time_interleaved(cases, rounds, sample_target_s);
  auto table = nlohmann::ordered_json::array();
  std::vector<double> spreads;
  size_t i = 0;
  for (int64_t m : grid.ms) {
    auto plane = nlohmann::ordered_json::array();
    for (int64_t n : grid.ns) {
      auto row = nlohmann::ordered_json::array();
      for (int64_t k : grid.ks) {
        row.push_back(2.0 * static_cast<double>(m) * n * k / timed[i].min_s);
        spreads.push_back(timed[i].spread());
        ++i;
      }
      plane.push_back(std::move(row));
    }
    table.push_back(std::move(plane));
  }
  return {table, spreads};
}

struct MemoryCfg {
  int64_t tokens, hidden, experts, top_k, ffn;
};

// One layer of a memory-bound calibration shape, alive while its batch is timed.
struct TimedLayer {
  MoeShape shape;
  std::unique_ptr<MoeWeights> weights;  // MoeLayer keeps a reference
  std::vector<float> x, y;
  Routing routing;
  std::unique_ptr<MoeLayer> layer;
};

// Memory-bound steps, timed inside the real layer on shapes whose GEMMs are
// cheap (small ffn); bytes counted by moe_step_bytes, as the predictor does.
// Layers are interleaved (one forward each per round, batches under the
// memory budget); each layer's steps come from its fastest forward.
std::pair<nlohmann::ordered_json, std::vector<double>> measure_memory_bound(
    const std::vector<MemoryCfg>& cfgs, int rounds) {
  std::vector<double> cfg_bytes;
  for (const MemoryCfg& cf : cfgs) {
    cfg_bytes.push_back(4.0 * cf.experts * 3 * cf.hidden * cf.ffn);
  }
  std::vector<MemSample> samples;
  std::vector<double> spreads;
  for (const auto& [begin, end] : batches_under(cfg_bytes, kInterleaveBudgetBytes)) {
    std::vector<TimedLayer> layers(end - begin);
    for (size_t i = begin; i < end; ++i) {
      const MemoryCfg& cf = cfgs[i];
      TimedLayer& t = layers[i - begin];
      t.shape.tokens = cf.tokens;
      t.shape.hidden = cf.hidden;
      t.shape.experts = cf.experts;
      t.shape.top_k = cf.top_k;
      t.shape.ffn = cf.ffn;
      t.weights = std::make_unique<MoeWeights>(random_weights(t.shape, 5));
      t.x = random_matrix(t.shape.tokens, t.shape.hidden, 1.0f, 6);
      t.y.resize(t.x.size());
      t.routing = synthetic_routing(t.shape, 0.0, 7);
      t.layer = std::make_unique<MoeLayer>(t.shape, *t.weights);
      t.layer->forward(t.x, t.y, &t.routing);  // warm-up
    }
    // Per layer: the step times of each round and the round's total.
    std::vector<std::vector<MoeStepTimes>> rounds_of(layers.size());
    for (int r = 0; r < rounds; ++r) {
      for (size_t i = 0; i < layers.size(); ++i) {
        MoeStepTimes st;
        layers[i].layer->forward(layers[i].x, layers[i].y, &layers[i].routing, &st);
        rounds_of[i].push_back(st);
      }
    }
    for (size_t i = 0; i < layers.size(); ++i) {
      // The steps of the fastest forward, not each step's own fastest round: a
      // millisecond step can fall into a moment the machine happened to be
      // quiet, which a whole forward (what the validation times) cannot.
      std::vector<double> totals;
      for (const MoeStepTimes& st : rounds_of[i]) totals.push_back(st.total_s());
      const size_t best = std::min_element(totals.begin(), totals.end()) - totals.begin();
      spreads.push_back(median(totals) / totals[best] - 1);
      const MoeStepTimes& st = rounds_of[i][best];
      const TimedLayer& t = layers[i];
      const MoeStepBytes bytes = moe_step_bytes(t.shape, t.shape.tokens * t.shape.top_k);
      samples.push_back({"softmax_topk", bytes.softmax_topk, st.softmax_topk_s});
      samples.push_back({"permute", bytes.permute, st.permute_s});
      samples.push_back({"activation", bytes.activation, st.activation_s});
      samples.push_back({"combine", bytes.combine, st.combine_s});
    }
  }
  // Pool samples into bins of a factor 4 in size; bandwidth of a bin =
  // total bytes / total seconds, so the sum of several steps is priced right.
  std::sort(samples.begin(), samples.end(),
            [](const MemSample& x, const MemSample& y) { return x.bytes < y.bytes; });
  std::vector<double> bin_bytes, bin_bw;
  for (size_t i = 0; i < samples.size();) {
    size_t j = i;
    double sb = 0, ss = 0, slog = 0;
    while (j < samples.size() && samples[j].bytes < samples[i].bytes * 4) {
      sb += samples[j].bytes;
      ss += samples[j].seconds;
      slog += std::log(samples[j].bytes);
      ++j;
    }
    const double center = std::exp(slog / static_cast<double>(j - i));
    if (bin_bytes.empty() || center > bin_bytes.back() * 1.0001) {
      bin_bytes.push_back(center);
      bin_bw.push_back(sb / std::max(ss, 1e-12));
    }
    i = j;
  }
  nlohmann::ordered_json raw = nlohmann::ordered_json::object();
  for (const MemSample& m : samples) {
    raw[m.step].push_back({{"bytes", m.bytes}, {"seconds", m.seconds}});
  }
  return {{{"bytes", bin_bytes}, {"bytes_per_s", bin_bw}, {"samples", raw}}, spreads};
}

}  // namespace

nlohmann::ordered_json run_calibration(const CalibrationOptions& opt) {
  const auto t_start = Clock::now();
  if (opt.threads > 0) set_kernel_threads(opt.threads);
  auto say = [&](const std::string& s) {
    if (opt.progress) opt.progress(s);
  };

  // Grid: m spans 1 (one token on an expert) to large batches; n and k cover
  // the catalog's hidden / expert-FFN sizes (2*ffn for the fused gate|up) and,
  // with the small n values, the router GEMM (n = experts). Beyond the grid
  // the model holds throughput constant.
  GemmGrid grid{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
                {8, 32, 128, 256, 512, 1024, 2048, 4096},
                {256, 512, 1024, 2048, 4096}};
  if (opt.smoke) {
    grid = {{1, 16, 256}, {8, 512, 2048}, {256, 1024}};
  } else if (!opt.quick) {
    grid.ms.push_back(2048);
    grid.ms.push_back(4096);
    grid.ns.push_back(8192);
    grid.ks.push_back(8192);
  }
  const bool fast = opt.quick || opt.smoke;
  // Rounds of the interleaved timing. A sample lasts at least sample_target_s,
  // as long as one forward of the validated layers (20-300 ms): a competing
  // process then takes the same share of a GEMM sample as of the layer, while
  // millisecond samples would catch moments when it happened to be off the
  // CPU and price the layer as if the machine were idle.
  const int rounds = opt.smoke ? 1 : opt.quick ? 3 : 5;
  const double sample_target_s = opt.smoke ? 0.0 : opt.quick ? 0.02 : 0.05;

  nlohmann::ordered_json out;
  out["format"] = "moesim-calibration";
  out["version"] = 1;
  out["device"] = "cpu";
  out["quick"] = opt.quick;
  out["machine"] = describe_machine();

  say("peak: square SGEMM");
  const int64_t peak_n = opt.smoke ? 512 : opt.quick ? 2048 : 4096;
  out["peak_gemm_flops_per_s"] = measure_peak_sgemm_flops_per_s(peak_n, fast ? 3 : 5);
  out["machine"]["peak_sgemm_n"] = peak_n;
  {
    float one = 1, res = 0;
    const std::function<void()> tiny = [&] { sgemm(1, 1, 1, &one, &one, &res); };
    out["launch_overhead_s"] = time_interleaved({&tiny, 1}, 20, 1e-4)[0].min_s;
  }

  auto [table, gemm_spreads] = measure_gemm_grid(grid, rounds, sample_target_s, say);
  out["gemm"] = {{"dtype", "fp32"},
                 {"m", grid.ms},
                 {"n", grid.ns},
                 {"k", grid.ks},
                 {"flops_per_s", std::move(table)}};

  say("memory-bound steps");
  std::vector<MemoryCfg> cfgs = {{128, 512, 16, 2, 64},   {512, 1024, 32, 4, 128},
                                 {1024, 2048, 64, 8, 64}, {2048, 4096, 8, 1, 256},
                                 {256, 4096, 64, 2, 512}, {2048, 1024, 128, 8, 128}};
  if (opt.smoke) cfgs.resize(2);
  if (!fast) cfgs.push_back({4096, 4096, 32, 4, 512});
  auto [memory, memory_spreads] = measure_memory_bound(cfgs, opt.smoke ? 1 : opt.quick ? 5 : 11);
  out["memory_bound"] = std::move(memory);
  out["timing"] = {{"statistic", "minimum over interleaved rounds"},
                   {"gemm_rounds", rounds},
                   {"gemm_spread", spread_summary(gemm_spreads)},
                   {"memory_bound_spread", spread_summary(memory_spreads)},
                   {"spread_definition", "median / minimum - 1 per point"}};
  out["seconds"] = std::chrono::duration<double>(Clock::now() - t_start).count();
  return out;
}

}  // namespace moesim::kern
