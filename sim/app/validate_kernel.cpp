// `moesim validate kernel`: closes the calibration loop. For each layer
// configuration the cost model (CalibratedCostModel, the interface the
// simulator uses) predicts the single-device MoE layer time from the routing's
// per-expert loads; the reference kernel then runs on that same routing and is
// timed. The report lists both and their relative error.
//
// Timing on a shared machine: the cases are interleaved (each repetition runs
// every case of a batch once; batches kept under kern::kInterleaveBudgetBytes
// of weights, which holds all 14 cases at once) and the measured time is the fastest repetition,
// the statistic the calibration tables use too; the spread (median / fastest - 1) says how
// disturbed the run was.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "hwmodels/calibrated_cost.h"
#include "hwmodels/kernels/calibration.h"
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

// One configuration: its prediction (from the routing and the tables only) and,
// while its batch is being timed, the layer and its timings.
struct PreparedCase {
  const Case* config = nullptr;
  kern::MoeShape shape;
  kern::Routing routing;
  std::vector<int64_t> load;
  kern::MoeStepTimes predicted;
  std::shared_ptr<const kern::MoeWeights> weights;  // MoeLayer keeps a reference
  std::vector<float> x, y;
  std::unique_ptr<kern::MoeLayer> layer;
  std::vector<double> totals;  // wall time per repetition
  std::vector<kern::MoeStepTimes> steps;
};

kern::MoeShape shape_of(const Case& c) {
  kern::MoeShape s;
  s.tokens = c.tokens;
  s.hidden = c.hidden;
  s.ffn = c.ffn;
  s.experts = c.experts;
  s.top_k = c.top_k;
  s.shared_experts = c.shared;
  s.capacity_factor = c.capacity_factor;
  return s;
}

// What random_weights depends on: cases that differ only in routing share
// their weights (the same values, generated once).
using WeightKey = std::tuple<int64_t, int64_t, int64_t, int64_t>;
WeightKey weight_key(const Case& c) {
  return {c.hidden, c.ffn, c.experts, c.shared};
}

// Router, routed and shared experts' FP32 weights.
double weight_bytes(const Case& c) {
  return 4.0 * ((c.experts + c.shared) * 3.0 * c.hidden * c.ffn + c.hidden * c.experts);
}

// Times cases[begin, end) interleaved: `reps` rounds of one forward per case.
void time_batch(std::vector<PreparedCase>& cases, size_t begin, size_t end, int reps,
                uint64_t seed) {
  std::map<WeightKey, std::shared_ptr<const kern::MoeWeights>> generated;
  for (size_t i = begin; i < end; ++i) {
    PreparedCase& p = cases[i];
    auto& w = generated[weight_key(*p.config)];
    if (!w) w = std::make_shared<const kern::MoeWeights>(kern::random_weights(p.shape, seed));
    p.weights = w;
    p.x = kern::random_matrix(p.shape.tokens, p.shape.hidden, 1.0f, seed + 99);
    p.y.resize(p.x.size());
    p.layer = std::make_unique<kern::MoeLayer>(p.shape, *p.weights);
    p.layer->forward(p.x, p.y, &p.routing);  // warm-up
    p.steps.resize(reps);
  }
  for (int r = 0; r < reps; ++r) {
    for (size_t i = begin; i < end; ++i) {
      PreparedCase& p = cases[i];
      const auto t0 = std::chrono::steady_clock::now();
      p.layer->forward(p.x, p.y, &p.routing, &p.steps[r]);
      p.totals.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  for (size_t i = begin; i < end; ++i) {  // free the batch's weights
    cases[i].layer.reset();
    cases[i].weights.reset();
    cases[i].x = {};
    cases[i].y = {};
  }
}

OrderedJson case_json(const PreparedCase& p, double measured_s, double spread) {
  const Case& c = *p.config;
  int64_t kept = 0, max_load = 0;
  for (int64_t l : p.load) {
    kept += l;
    max_load = std::max(max_load, l);
  }
  const double predicted_s = p.predicted.total_s();
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
  j["empty_experts"] = std::count(p.load.begin(), p.load.end(), 0);
  j["predicted_s"] = predicted_s;
  j["measured_s"] = measured_s;
  j["measured_median_s"] = median(p.totals);
  j["spread"] = spread;
  j["error"] = (predicted_s - measured_s) / measured_s;
  j["predicted_steps"] = steps_json(p.predicted);
  // The steps of the fastest repetition (the one measured_s is).
  const size_t best = std::min_element(p.totals.begin(), p.totals.end()) - p.totals.begin();
  j["measured_steps"] = steps_json(p.steps[best]);
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
      "reps", po::value(&reps)->default_value(5),
      "timed repetitions per case, interleaved across cases (fastest)")(
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
  if (reps < 1 || reps > 1000)
    throw Error(fmt::format("--reps must be in [1, 1000], got {}", reps));
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
  report["statistic"] = "fastest of reps interleaved repetitions";
  report["seed"] = seed;
  std::vector<PreparedCase> prepared(max_cases);
  std::vector<double> bytes;
  std::set<WeightKey> counted;
  for (size_t ci = 0; ci < max_cases; ++ci) {
    PreparedCase& p = prepared[ci];
    p.config = &kCases[ci];
    p.shape = shape_of(kCases[ci]);
    p.routing = kern::synthetic_routing(p.shape, kCases[ci].zipf_s, seed);
    p.load = kern::tokens_per_expert(p.shape, p.routing);
    // Prediction first, from the routing and the tables only.
    p.predicted = kern::predict_moe_layer(model, p.shape, p.load);
    bytes.push_back(counted.insert(weight_key(kCases[ci])).second ? weight_bytes(kCases[ci]) : 0);
  }
  for (const auto& [begin, end] : kern::batches_under(bytes, kern::kInterleaveBudgetBytes)) {
    time_batch(prepared, begin, end, reps, seed);
  }
  OrderedJson cases = OrderedJson::array();
  std::vector<double> abs_err, spreads;
  for (const PreparedCase& p : prepared) {
    const double measured_s = *std::min_element(p.totals.begin(), p.totals.end());
    const double spread = median(p.totals) / measured_s - 1;
    const double predicted_s = p.predicted.total_s();
    const double err = (predicted_s - measured_s) / measured_s;
    abs_err.push_back(std::abs(err));
    spreads.push_back(spread);
    cases.push_back(case_json(p, measured_s, spread));
    std::cerr << fmt::format(
        "{:<32} predicted {:8.4f} s  measured {:8.4f} s  error {:+6.1f}%  spread {:5.1f}%\n",
        p.config->name, predicted_s, measured_s, 100 * err, 100 * spread);
  }
  report["median_abs_error"] = median(abs_err);
  report["max_abs_error"] = *std::max_element(abs_err.begin(), abs_err.end());
  report["target_median_abs_error"] = 0.10;
  report["target_max_abs_error"] = 0.25;
  report["spread"] = kern::spread_summary(spreads);
  report["cases"] = std::move(cases);
  emit(render_json(report), output);
  return 0;
}

}  // namespace moesim::cli
