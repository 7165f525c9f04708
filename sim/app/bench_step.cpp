// `moesim bench step`: the execution model's speed on the largest example,
// one DeepSeek-V3 training step on 2,048 H800s (PP16 x EP64 x DP128).

#include <sys/resource.h>

#include <chrono>
#include <iostream>

#include "sim/app/bench.h"
#include "sim/app/scenario_runner.h"

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
  const OrderedJson report = run_scenario_report(doc);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  OrderedJson out;
  out["benchmark"] = "step";
  out["scenario"] =
      scenario_path.empty() ? "examples/deepseek-v3-h800-2048gpu.json" : scenario_path;
  out["gpus"] = report["gpus"];
  out["status"] = report["status"];
  out["wall_seconds"] = wall;
  out["simulated_step_time_s"] = report["step_time_s"];
  if (report.contains("simulation")) {
    const auto& sim = report["simulation"];
    out["tasks"] = sim["tasks"];
    out["collectives"] = sim["collectives"];
    out["events"] = sim["events"];
    out["events_per_second"] = sim["events"].get<double>() / wall;
  }
  out["peak_rss_bytes"] = peak_rss_bytes();
  std::cout << render_json(out);
  return 0;
}

}  // namespace moesim::cli
