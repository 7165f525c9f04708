// `moesim run`: simulate a scenario and report (the main job).

#include <iostream>

#include <fmt/format.h>

#include "reports/timeline.h"
#include "reports/training_report.h"
#include "sim/app/commands.h"
#include "sim/core/config.h"
#include "sim/core/file_io.h"
#include "sim/scenario/run.h"

namespace moesim::cli {
namespace {

constexpr const char* kDefaultScenario = "mixtral-8x7b-h100-16gpu.json";

}  // namespace

int run_main(const Args& args) {
  po::options_description options("run options");
  std::string scenario_path, output_path, timeline_path;
  int timeline_gpus = 64;
  options.add_options()("scenario", po::value(&scenario_path), "scenario JSON file")(
      "output,o", po::value(&output_path), "write the JSON report to this file")(
      "json", "print the JSON report to stdout instead of the summary")(
      "timeline", po::value(&timeline_path),
      "write the last step's timeline (Chrome trace JSON, opens in Perfetto)")(
      "timeline-max-gpus", po::value(&timeline_gpus),
      "GPUs to include in the timeline (default 64)");
  po::positional_options_description positional;
  positional.add("scenario", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim run [scenario.json] [-o report.json] [--json] [--timeline trace.json]\n"
             "  Without a scenario, runs the embedded default: Mixtral-8x7B training on 2 nodes "
             "of 8 H100s\n  (examples/mixtral-8x7b-h100-16gpu.json).")) {
    return 0;
  }
  if (timeline_gpus < 1) throw Error("--timeline-max-gpus: expected a positive integer");
  const Json doc =
      scenario_path.empty() ? embedded_example(kDefaultScenario) : load_json_file(scenario_path);
  scenario::TrainingRun run = scenario::run_training(doc);
  if (!timeline_path.empty() && run.simulated()) {
    reports::TimelineOptions t;
    t.gpus_per_node = run.scenario.setup.gpus_per_node;
    t.max_gpus = timeline_gpus;
    write_file_atomic(timeline_path, reports::chrome_trace(run.result.last_graph,
                                                           run.result.steps.back().execution, t));
    const int gpus = run.scenario.setup.parallel.gpus();
    if (gpus > timeline_gpus) {
      run.warnings.push_back(
          fmt::format("timeline shows the first {} of {} GPUs", timeline_gpus, gpus));
    }
  }
  const std::string rendered = render_json(reports::training_report(run));
  if (vm.count("json")) {
    std::cout << rendered;
  } else {
    std::cout << reports::training_summary(run);
  }
  if (!output_path.empty()) {
    write_file_atomic(output_path, rendered);
    if (!vm.count("json")) std::cout << "report written to " << output_path << "\n";
  }
  return 0;
}

}  // namespace moesim::cli
