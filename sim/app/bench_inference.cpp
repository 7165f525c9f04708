// `moesim bench inference`: the serving simulation's speed on the decode
// example (DeepSeek-V3, EP72 on 9 x 8 H100, 256 requests per GPU), played
// for at least --iterations decode iterations.

#include <chrono>
#include <cmath>
#include <iostream>

#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "sim/core/error.h"
#include "sim/scenario/inference_run.h"

namespace moesim::cli {

int bench_inference_main(const Args& args) {
  po::options_description options("bench inference options");
  std::string scenario_path;
  int64_t min_iterations = 2000;
  options.add_options()("scenario", po::value(&scenario_path),
                        "closed-loop inference scenario to time (default: "
                        "examples/deepseek-v3-h100-decode-ep72.json)")(
      "iterations", po::value(&min_iterations),
      "iterations to simulate at least (default 2000): requests.count becomes enough rounds of "
      "the closed loop's concurrency")("json",
                                       "print JSON (the only output format; accepted for "
                                       "uniformity)");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim bench inference [--scenario FILE] [--iterations N] --json")) {
    return 0;
  }
  if (min_iterations < 1 || min_iterations > 10'000'000) {
    throw Error("--iterations: expected an integer in [1, 10000000]");
  }
  const std::string name =
      scenario_path.empty() ? "examples/deepseek-v3-h100-decode-ep72.json" : scenario_path;
  Json doc = scenario_path.empty() ? embedded_example("deepseek-v3-h100-decode-ep72.json")
                                   : load_json_file(scenario_path);
  const Json& requests = doc["requests"];
  if (!requests.is_object() || requests.value("arrival", "") != "closed" ||
      !requests.contains("output_tokens") || !requests["output_tokens"].is_number_integer()) {
    throw Error(name +
                ": requests: bench inference needs a closed loop with a fixed "
                "output_tokens");
  }
  // Each round of `concurrency` requests decodes output_tokens - 1 iterations.
  const int64_t per_round = std::max<int64_t>(1, requests["output_tokens"].get<int64_t>() - 1);
  const int64_t rounds = (min_iterations + per_round - 1) / per_round + 1;
  doc["requests"]["count"] = rounds * requests["concurrency"].get<int64_t>();

  const auto start = std::chrono::steady_clock::now();
  const scenario::InferenceRun run = scenario::run_inference(doc);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  OrderedJson out;
  out["benchmark"] = "inference";
  out["scenario"] = name;
  out["gpus"] = run.scenario.gpus();
  out["requests"] = doc["requests"]["count"].get<int64_t>();
  out["status"] = run.simulated() ? "ok" : "out_of_memory";
  out["wall_seconds"] = wall;
  out["simulated_seconds"] = run.result.makespan_s;
  out["simulated_over_wall"] = wall > 0 ? run.result.makespan_s / wall : 0.0;
  out["iterations"] = run.result.iterations;
  out["iterations_per_second"] = wall > 0 ? static_cast<double>(run.result.iterations) / wall : 0.0;
  out["events"] = run.result.events;
  out["peak_rss_bytes"] = peak_rss_bytes();
  std::cout << render_json(out);
  return 0;
}

}  // namespace moesim::cli
