// `moesim bench kernel`: the reference MoE kernel's achieved throughput. Expert
// GEMM GFLOP/s is compared with the machine's peak (a large square OpenBLAS
// SGEMM in the same run) and the whole layer with the simple PyTorch MoE layer
// (scripts/torch_moe_baseline.py: loop over experts, index_select/index_add_)
// on the same shapes, routing and threads.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "hwmodels/kernels/calibration.h"
#include "hwmodels/kernels/moe_layer.h"
#include "hwmodels/kernels/moe_layer_cuda.h"
#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "sim/core/config.h"

namespace moesim::cli {
namespace {

struct Shape {
  const char* name;
  int64_t tokens, hidden, ffn, experts, top_k, shared;
};

// Scaled-down catalog shapes (2-core machine): Mixtral-like few large
// experts, DeepSeekMoE-like many small experts with shared ones, OLMoE-like
// top-8 of 64.
constexpr Shape kShapes[] = {
    {"mixtral_like", 1024, 2048, 1024, 8, 2, 0},
    {"deepseekmoe_like", 1024, 2048, 512, 64, 6, 2},
    {"olmoe_like", 1024, 1024, 512, 64, 8, 0},
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

OrderedJson torch_baseline(const std::string& python, const std::string& script,
                           const kern::MoeShape& s, const kern::Routing& r, int threads, int reps) {
  OrderedJson j;
  if (!std::filesystem::exists(script)) {
    j["available"] = false;
    j["reason"] = "baseline script not found: " + script;
    return j;
  }
  const auto dir = std::filesystem::temp_directory_path() /
                   fmt::format("moesim-bench-kernel-{}", static_cast<long>(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream e(dir / "expert.i32", std::ios::binary);
    e.write(reinterpret_cast<const char*>(r.expert.data()),
            static_cast<std::streamsize>(r.expert.size() * sizeof(int32_t)));
    std::ofstream w(dir / "weight.f32", std::ios::binary);
    w.write(reinterpret_cast<const char*>(r.weight.data()),
            static_cast<std::streamsize>(r.weight.size() * sizeof(float)));
  }
  const std::string out = run_capture(
      fmt::format("'{}' '{}' --tokens {} --hidden {} --ffn {} --experts {} --top-k {} --shared {} "
                  "--threads {} --reps {} --routing-dir '{}' 2>/dev/null",
                  python, script, s.tokens, s.hidden, s.ffn, s.experts, s.top_k, s.shared_experts,
                  threads, reps, dir.string()));
  std::filesystem::remove_all(dir);
  try {
    const Json parsed = parse_json(out, "torch baseline output");
    j["available"] = parsed.value("available", false);
    for (auto it = parsed.begin(); it != parsed.end(); ++it) j[it.key()] = it.value();
  } catch (const Error&) {
    j["available"] = false;
    j["reason"] = "python3 / torch baseline did not produce JSON";
  }
  return j;
}

}  // namespace

int bench_kernel_main(const Args& args) {
  po::options_description options("bench kernel options");
  int threads = 0, reps = 0;
  std::string script, python;
  options.add_options()("threads", po::value(&threads)->default_value(0),
                        "threads (0: all hardware threads)")(
      "reps", po::value(&reps)->default_value(5), "timed repetitions (median)")(
      "quick", "one shape, square peak at n=2048")("no-torch", "skip the PyTorch comparison")(
      "torch-script",
      po::value(&script)->default_value(std::string(MOESIM_SCRIPTS_DIR) + "/torch_moe_baseline.py"),
      "PyTorch baseline script")(
      "python",
      po::value(&python)->default_value(
          std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"),
      "Python with torch (Debian's python3-torch lives under /usr/bin/python3)")(
      "json", "print JSON (the only output format; accepted for scripts)");
  po::variables_map vm;
  if (!parse(args, options, {}, vm, "moesim bench kernel [--threads N] [--quick] --json")) {
    return 0;
  }
  if (threads < 0) throw Error("--threads must be >= 0");
  if (reps < 1) throw Error("--reps must be >= 1");
  if (threads > 0) kern::set_kernel_threads(threads);
  threads = kern::kernel_threads();
  const bool quick = vm.count("quick") > 0;

  OrderedJson out;
  out["benchmark"] = "moe_kernel";
  out["machine"] = kern::describe_machine();
  out["threads"] = threads;
  const int64_t peak_n = quick ? 2048 : 4096;
  const double peak = kern::measure_peak_sgemm_flops_per_s(peak_n, quick ? 3 : 5);
  out["peak_sgemm_n"] = peak_n;
  out["peak_sgemm_gflops"] = peak / 1e9;
  OrderedJson shapes = OrderedJson::array();
  std::vector<double> speedups, fractions;
  for (const Shape& sh : kShapes) {
    if (quick && shapes.size() == 1) break;
    kern::MoeShape s;
    s.tokens = sh.tokens;
    s.hidden = sh.hidden;
    s.ffn = sh.ffn;
    s.experts = sh.experts;
    s.top_k = sh.top_k;
    s.shared_experts = sh.shared;
    const kern::Routing routing = kern::synthetic_routing(s, 0.0, 1);
    const kern::MoeWeights w = kern::random_weights(s, 1);
    const auto x = kern::random_matrix(s.tokens, s.hidden, 1.0f, 2);
    std::vector<float> y(x.size());
    kern::MoeLayer layer(s, w);
    layer.forward(x, y, &routing);
    std::vector<double> total, expert_gemm;
    for (int r = 0; r < reps; ++r) {
      kern::MoeStepTimes st;
      const auto t0 = std::chrono::steady_clock::now();
      layer.forward(x, y, &routing, &st);
      total.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      expert_gemm.push_back(st.gate_up_s + st.down_s);
    }
    const double expert_flops =
        2.0 * static_cast<double>(s.tokens * s.top_k) * 3.0 * static_cast<double>(s.hidden * s.ffn);
    const double gemm_s = median(expert_gemm), layer_s = median(total);
    OrderedJson j;
    j["name"] = sh.name;
    j["tokens"] = s.tokens;
    j["hidden"] = s.hidden;
    j["ffn"] = s.ffn;
    j["experts"] = s.experts;
    j["top_k"] = s.top_k;
    j["shared_experts"] = s.shared_experts;
    j["layer_s"] = layer_s;
    j["expert_gemm_s"] = gemm_s;
    j["expert_gemm_gflops"] = expert_flops / gemm_s / 1e9;
    j["expert_gemm_fraction_of_peak"] = expert_flops / gemm_s / peak;
    fractions.push_back(expert_flops / gemm_s / peak);
    if (!vm.count("no-torch")) {
      OrderedJson t = torch_baseline(python, script, s, routing, threads, reps);
      if (t.value("available", false) && t.contains("median_s")) {
        const double ts = t["median_s"].get<double>();
        j["torch_s"] = ts;
        j["speedup_vs_torch"] = ts / layer_s;
        speedups.push_back(ts / layer_s);
      }
      j["torch"] = std::move(t);
    }
    shapes.push_back(std::move(j));
  }
  out["shapes"] = std::move(shapes);
  out["min_expert_gemm_fraction_of_peak"] = *std::min_element(fractions.begin(), fractions.end());
  if (!speedups.empty()) {
    out["torch_available"] = true;
    out["min_speedup_vs_torch"] = *std::min_element(speedups.begin(), speedups.end());
  } else {
    out["torch_available"] = false;
  }
  std::string why;
  out["cuda_built"] = kern::cuda::module_available(&why);
  out["cuda_device"] = kern::cuda::device_available(&why);
  if (!why.empty()) out["cuda_note"] = why;
  emit(render_json(out), "");
  return 0;
}

}  // namespace moesim::cli
