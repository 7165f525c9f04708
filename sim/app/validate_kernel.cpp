// `moesim validate kernel`: closes the calibration loop. For each layer
// configuration the cost model (CalibratedCostModel, the interface the
// simulator uses) predicts the single-device MoE layer time from the routing's
// per-expert loads; the reference kernel then runs on that same routing and is
// timed. The report lists both and their relative error.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "hwmodels/calibrated_cost.h"
#include "hwmodels/kernels/layer_cost.h"
#include "hwmodels/kernels/moe_layer.h"
#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "sim/core/config.h"

namespace moesim::cli {
namespace {

struct Case {
  const char* name;
  int64_t tokens, hidden, ffn, experts, top_k, shared;
  double zipf_s;           // 0: uniform routing
  double capacity_factor;  // <= 0: no dropping
};

// Experts 8-256, top-k 1-8, hidden 512-4096, uniform and Zipf-skewed routing,
// with and without drops and shared experts; sized so one forward takes
// ~20-300 ms on 2 cores and the weights stay under ~0.5 GB.
constexpr Case kCases[] = {
    {"e8_k1_h512_uniform", 1024, 512, 512, 8, 1, 0, 0.0, 0},
    {"e8_k2_h1024_zipf1.2", 1024, 1024, 512, 8, 2, 0, 1.2, 0},
    {"e64_k8_h1024_uniform", 1024, 1024, 256, 64, 8, 0, 0.0, 0},
    {"e64_k8_h1024_zipf1.0", 1024, 1024, 256, 64, 8, 0, 1.0, 0},
    {"e16_k2_h2048_uniform", 1024, 2048, 512, 16, 2, 0, 0.0, 0},
    {"e16_k2_h2048_zipf1.5_cf1.25", 1024, 2048, 512, 16, 2, 0, 1.5, 1.25},
    {"e8_k2_h4096_uniform", 512, 4096, 1024, 8, 2, 0, 0.0, 0},
    {"e8_k2_h4096_zipf1.0", 256, 4096, 2048, 8, 2, 0, 1.0, 0},
    {"e256_k8_h512_uniform", 1024, 512, 256, 256, 8, 0, 0.0, 0},
    {"e256_k8_h512_zipf1.2", 1024, 512, 256, 256, 8, 0, 1.2, 0},
    {"e128_k4_h512_zipf0.8", 1024, 512, 512, 128, 4, 0, 0.8, 0},
    {"e64_k6_h2048_shared2_zipf0.8", 512, 2048, 256, 64, 6, 2, 0.8, 0},
    {"e32_k4_h1024_shared1_cf1.0", 1024, 1024, 512, 32, 4, 1, 0.0, 1.0},
    {"e16_k1_h512_zipf2.0", 2048, 512, 512, 16, 1, 0, 2.0, 0},
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

OrderedJson steps_json(const kern::MoeStepTimes& t) {
  OrderedJson j;
  j["router_s"] = t.router_s;
  j["softmax_topk_s"] = t.softmax_topk_s;
  j["permute_s"] = t.permute_s;
  j["gate_up_s"] = t.gate_up_s;
  j["activation_s"] = t.activation_s;
  j["down_s"] = t.down_s;
  j["combine_s"] = t.combine_s;
  j["shared_s"] = t.shared_s;
  return j;
}

}  // namespace

int validate_kernel_main(const Args& args) {
  po::options_description options("validate kernel options");
  std::string calib_path, output;
  int reps = 0;
  size_t max_cases = 0;
  uint64_t seed = 0;
  options.add_options()("calib", po::value(&calib_path),
                        "calibration JSON from `moesim calibrate`")(
      "reps", po::value(&reps)->default_value(5), "timed repetitions per case (median)")(
      "seed", po::value(&seed)->default_value(1), "seed of weights, inputs and routing")(
      "cases", po::value(&max_cases)->default_value(std::size(kCases)),
      "run only the first N configurations (for quick checks)")(
      "output,o", po::value(&output), "write the report here instead of stdout")(
      "json", "print JSON (the only output format; accepted for scripts)");
  po::variables_map vm;
  if (!parse(args, options, {}, vm,
             "moesim validate kernel --calib calib.json [--reps N] --json")) {
    return 0;
  }
  if (calib_path.empty()) throw Error("--calib is required (write one with `moesim calibrate`)");
  if (reps < 1) throw Error("--reps must be >= 1");
  if (max_cases < 1 || max_cases > std::size(kCases)) {
    throw Error(fmt::format("--cases must be in [1, {}]", std::size(kCases)));
  }
  const Json calib_json = load_json_file(calib_path);
  const hw::CalibratedCostModel model(calib_json, calib_path);
  if (model.device() != "cpu") {
    throw Error(fmt::format("{}: device: expected \"cpu\" (the kernel runs here), got \"{}\"",
                            calib_path, model.device()));
  }
  // Time the kernel with the thread count the tables were measured with.
  int threads = kern::kernel_threads();
  if (calib_json["machine"].is_object() && calib_json["machine"].contains("kernel_threads") &&
      calib_json["machine"]["kernel_threads"].is_number_integer()) {
    threads = std::max(1, calib_json["machine"]["kernel_threads"].get<int>());
  }
  kern::set_kernel_threads(threads);

  OrderedJson report;
  report["validation"] = "kernel";
  report["calibration"] = calib_path;
  report["threads"] = threads;
  report["reps"] = reps;
  report["seed"] = seed;
  OrderedJson cases = OrderedJson::array();
  std::vector<double> abs_err;
  for (size_t ci = 0; ci < max_cases; ++ci) {
    const Case& c = kCases[ci];
    kern::MoeShape s;
    s.tokens = c.tokens;
    s.hidden = c.hidden;
    s.ffn = c.ffn;
    s.experts = c.experts;
    s.top_k = c.top_k;
    s.shared_experts = c.shared;
    s.capacity_factor = c.capacity_factor;
    const kern::Routing routing = kern::synthetic_routing(s, c.zipf_s, seed);
    const std::vector<int64_t> load = kern::tokens_per_expert(s, routing);

    // Prediction first, from the routing and the tables only.
    const kern::MoeStepTimes predicted = kern::predict_moe_layer(model, s, load);

    const kern::MoeWeights w = kern::random_weights(s, seed);
    const auto x = kern::random_matrix(s.tokens, s.hidden, 1.0f, seed + 99);
    std::vector<float> y(x.size());
    kern::MoeLayer layer(s, w);
    layer.forward(x, y, &routing);  // warm-up
    std::vector<double> total;
    std::vector<kern::MoeStepTimes> steps(reps);
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      layer.forward(x, y, &routing, &steps[r]);
      total.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    kern::MoeStepTimes measured_steps;
    auto med = [&](double kern::MoeStepTimes::*f) {
      std::vector<double> v;
      for (const auto& st : steps) v.push_back(st.*f);
      measured_steps.*f = median(v);
    };
    for (auto f : {&kern::MoeStepTimes::router_s, &kern::MoeStepTimes::softmax_topk_s,
                   &kern::MoeStepTimes::permute_s, &kern::MoeStepTimes::gate_up_s,
                   &kern::MoeStepTimes::activation_s, &kern::MoeStepTimes::down_s,
                   &kern::MoeStepTimes::combine_s, &kern::MoeStepTimes::shared_s}) {
      med(f);
    }
    const double measured_s = median(total);
    const double predicted_s = predicted.total_s();
    const double err = (predicted_s - measured_s) / measured_s;
    abs_err.push_back(std::abs(err));

    int64_t kept = 0, max_load = 0;
    for (int64_t l : load) {
      kept += l;
      max_load = std::max(max_load, l);
    }
    OrderedJson j;
    j["name"] = c.name;
    j["tokens"] = c.tokens;
    j["hidden"] = c.hidden;
    j["ffn"] = c.ffn;
    j["experts"] = c.experts;
    j["top_k"] = c.top_k;
    j["shared_experts"] = c.shared;
    j["routing"] = c.zipf_s > 0 ? fmt::format("zipf s={}", c.zipf_s) : std::string("uniform");
    j["capacity_factor"] = c.capacity_factor;
    j["dropped_assignments"] = c.tokens * c.top_k - kept;
    j["max_tokens_per_expert"] = max_load;
    j["empty_experts"] = std::count(load.begin(), load.end(), 0);
    j["predicted_s"] = predicted_s;
    j["measured_s"] = measured_s;
    j["error"] = err;
    j["predicted_steps"] = steps_json(predicted);
    j["measured_steps"] = steps_json(measured_steps);
    cases.push_back(std::move(j));
    std::cerr << fmt::format("{:<32} predicted {:8.4f} s  measured {:8.4f} s  error {:+6.1f}%\n",
                             c.name, predicted_s, measured_s, 100 * err);
  }
  report["median_abs_error"] = median(abs_err);
  report["max_abs_error"] = *std::max_element(abs_err.begin(), abs_err.end());
  report["target_median_abs_error"] = 0.10;
  report["target_max_abs_error"] = 0.25;
  report["cases"] = std::move(cases);
  emit(render_json(report), output);
  return 0;
}

}  // namespace moesim::cli
