#include "hwmodels/kernels/calibration.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
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

namespace {
std::vector<double> repeat_timed(const std::function<void()>& fn, int min_reps, double target_s,
                                 int max_reps) {
  const double first = seconds_of(fn);  // warm-up: caches, page faults, BLAS buffers
  const int reps = std::clamp(static_cast<int>(target_s / std::max(first, 1e-9)), min_reps,
                              std::max(min_reps, max_reps));
  std::vector<double> t;
  t.reserve(reps);
  for (int i = 0; i < reps; ++i) t.push_back(seconds_of(fn));
  return t;
}
}  // namespace

double median_seconds(const std::function<void()>& fn, int min_reps, double target_s,
                      int max_reps) {
  return median(repeat_timed(fn, min_reps, target_s, max_reps));
}

double mean_seconds(const std::function<void()>& fn, int min_reps, double target_s, int max_reps) {
  const std::vector<double> t = repeat_timed(fn, min_reps, target_s, max_reps);
  double s = 0;
  for (double x : t) s += x;
  return s / static_cast<double>(t.size());
}

double measure_peak_sgemm_flops_per_s(int64_t n, int reps) {
  // OpenBLAS's own threading here: the peak is what the library achieves,
  // the yardstick the reference kernel's split GEMMs are held against.
  const auto a = random_matrix(n, n, 1.0f, 11), b = random_matrix(n, n, 1.0f, 12);
  std::vector<float> c(n * n);
  openblas_set_num_threads(kernel_threads());
  const double s = median_seconds(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n),
                    static_cast<int>(n), static_cast<int>(n), 1.0f, a.data(), static_cast<int>(n),
                    b.data(), static_cast<int>(n), 0.0f, c.data(), static_cast<int>(n));
      },
      reps, 0.0, reps);
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
  std::vector<int64_t> ms = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  std::vector<int64_t> ns = {8, 32, 128, 256, 512, 1024, 2048, 4096};
  std::vector<int64_t> ks = {256, 512, 1024, 2048, 4096};
  if (opt.smoke) {
    ms = {1, 16, 256};
    ns = {8, 512, 2048};
    ks = {256, 1024};
  } else if (!opt.quick) {
    ms.push_back(2048);
    ms.push_back(4096);
    ns.push_back(8192);
    ks.push_back(8192);
  }
  const bool fast = opt.quick || opt.smoke;
  const int min_reps = opt.smoke ? 1 : opt.quick ? 3 : 5;
  const double target_s = opt.smoke ? 0.0 : opt.quick ? 0.02 : 0.1;

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
    out["launch_overhead_s"] =
        median_seconds([&] { sgemm(1, 1, 1, &one, &one, &res); }, 20, 0.01, 1000);
  }

  const int64_t max_m = ms.back(), max_n = ns.back(), max_k = ks.back();
  const auto a = random_matrix(max_m, max_k, 1.0f, 21);
  // In the layer every expert multiplies by its own weight, fetched from
  // memory; timing one B over and over would keep it in cache. So each call
  // takes its B at a new place in a pool larger than the last-level cache.
  const int64_t pool = std::max<int64_t>(max_k * max_n, int64_t{96} << 20 >> 2);
  const auto b = random_matrix(pool + max_k * max_n, 1, 1.0f, 22);
  int64_t b_off = 0;
  std::vector<float> c(max_m * max_n);
  auto table = nlohmann::ordered_json::array();
  size_t done = 0;
  const size_t total = ms.size() * ns.size() * ks.size();
  for (int64_t m : ms) {
    auto plane = nlohmann::ordered_json::array();
    for (int64_t n : ns) {
      auto row = nlohmann::ordered_json::array();
      for (int64_t k : ks) {
        // Contiguous operands with the leading dimensions the kernel uses.
        const double s = median_seconds(
            [&] {
              b_off = (b_off + n * k + 4096) % pool;
              sgemm(m, n, k, a.data(), b.data() + b_off / 16 * 16, c.data());
            },
            min_reps, target_s);
        row.push_back(2.0 * static_cast<double>(m) * n * k / s);
        ++done;
      }
      plane.push_back(std::move(row));
      say(fmt::format("gemm {}/{}", done, total));
    }
    table.push_back(std::move(plane));
  }
  out["gemm"] = {{"dtype", "fp32"}, {"m", ms}, {"n", ns}, {"k", ks}, {"flops_per_s", table}};

  // Memory-bound steps, timed inside the real layer on shapes whose GEMMs are
  // cheap (small ffn); bytes counted by moe_step_bytes, as the predictor does.
  say("memory-bound steps");
  std::vector<MemSample> samples;
  struct Cfg {
    int64_t tokens, hidden, experts, top_k, ffn;
  };
  std::vector<Cfg> cfgs = {{128, 512, 16, 2, 64},   {512, 1024, 32, 4, 128},
                           {1024, 2048, 64, 8, 64}, {2048, 4096, 8, 1, 256},
                           {256, 4096, 64, 2, 512}, {2048, 1024, 128, 8, 128}};
  if (opt.smoke) cfgs.resize(2);
  if (!fast) cfgs.push_back({4096, 4096, 32, 4, 512});
  for (const Cfg& cf : cfgs) {
    MoeShape s;
    s.tokens = cf.tokens;
    s.hidden = cf.hidden;
    s.experts = cf.experts;
    s.top_k = cf.top_k;
    s.ffn = cf.ffn;
    const MoeWeights w = random_weights(s, 5);
    const auto x = random_matrix(s.tokens, s.hidden, 1.0f, 6);
    std::vector<float> y(x.size());
    const Routing r = synthetic_routing(s, 0.0, 7);
    MoeLayer layer(s, w);
    const int reps = opt.smoke ? 1 : opt.quick ? 5 : 11;
    std::map<std::string, std::vector<double>> t;
    layer.forward(x, y, &r);
    for (int i = 0; i < reps; ++i) {
      MoeStepTimes st;
      layer.forward(x, y, &r, &st);
      t["softmax_topk"].push_back(st.softmax_topk_s);
      t["permute"].push_back(st.permute_s);
      t["activation"].push_back(st.activation_s);
      t["combine"].push_back(st.combine_s);
    }
    const MoeStepBytes bytes = moe_step_bytes(s, s.tokens * s.top_k);
    samples.push_back({"softmax_topk", bytes.softmax_topk, median(t["softmax_topk"])});
    samples.push_back({"permute", bytes.permute, median(t["permute"])});
    samples.push_back({"activation", bytes.activation, median(t["activation"])});
    samples.push_back({"combine", bytes.combine, median(t["combine"])});
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
  out["memory_bound"] = {{"bytes", bin_bytes}, {"bytes_per_s", bin_bw}, {"samples", raw}};
  out["seconds"] = std::chrono::duration<double>(Clock::now() - t_start).count();
  return out;
}

}  // namespace moesim::kern
