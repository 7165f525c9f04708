// `moesim bench step`: the execution model's speed on the largest example,
// one DeepSeek-V3 training step on 2,048 H800s (PP16 x EP64 x DP128).

#include <sys/resource.h>

#include <chrono>
#include <iostream>

#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "sim/scenario/run.h"

namespace moesim::cli {

int bench_step_main(const Args& args) {
  po::options_description options("bench step options");
  std::string scenario_path;
  options.add_options()("scenario", po::value(&scenario_path),
                        "scenario to time (default: examples/deepseek-v3-h800-2048gpu.json)")(
      "json", "print JSON (the only output format; accepted for uniformity)");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse(args, options, positional, vm, "moesim bench step [--scenario FILE] --json")) return 0;
  const Json doc = scenario_path.empty() ? embedded_example("deepseek-v3-h800-2048gpu.json")
                                         : load_json_file(scenario_path);
  const auto start = std::chrono::steady_clock::now();
  const scenario::TrainingRun run = scenario::run_training(doc);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  OrderedJson out;
  out["benchmark"] = "step";
  out["scenario"] =
      scenario_path.empty() ? "examples/deepseek-v3-h800-2048gpu.json" : scenario_path;
  out["gpus"] = run.scenario.setup.parallel.gpus();
  out["status"] = run.simulated() ? "ok" : "out_of_memory";
  out["wall_seconds"] = wall;
  if (run.metrics) {
    const exec::TrainingMetrics& m = *run.metrics;
    out["simulated_step_time_s"] = m.step_time_s;
    out["tasks"] = m.tasks;
    out["collectives"] = m.collectives;
    out["events"] = m.events;
    out["events_per_second"] = static_cast<double>(m.events) / wall;
  } else {
    out["simulated_step_time_s"] = nullptr;
  }
  out["peak_rss_bytes"] = peak_rss_bytes();
  std::cout << render_json(out);
  return 0;
}

}  // namespace moesim::cli
