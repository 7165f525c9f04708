// `moesim run`: simulate a scenario and report (the main job).

#include <iostream>

#include <fmt/format.h>

#include "reports/inference_report.h"
#include "reports/request_log.h"
#include "reports/timeline.h"
#include "reports/training_report.h"
#include "sim/app/commands.h"
#include "sim/app/explore/point_runner.h"
#include "sim/core/config.h"
#include "sim/core/file_io.h"
#include "sim/scenario/inference_run.h"
#include "sim/scenario/run.h"

namespace moesim::cli {
namespace {

constexpr const char* kDefaultScenario = "mixtral-8x7b-h100-16gpu.json";
// Progress appears on stderr only once a run has taken this long: most runs
// end sooner and print their report alone.
constexpr double kQuietS = 2.0;

struct Outputs {
  std::string output_path, timeline_path, request_log_path;
  int timeline_gpus = 64;
  bool json = false;
};

void print_report(const OrderedJson& report, const std::string& summary, const Outputs& out) {
  const std::string rendered = render_json(report);
  std::cout << (out.json ? rendered : summary);
  if (!out.output_path.empty()) {
    write_file_atomic(out.output_path, rendered);
    if (!out.json) std::cout << "report written to " << out.output_path << "\n";
  }
}

void run_inference_scenario(const Json& doc, const Outputs& out) {
  scenario::InferenceRun run =
      scenario::run_inference(doc, progress_printer("run: requests finished", kQuietS));
  if (!out.timeline_path.empty() && run.simulated()) {
    write_file_atomic(out.timeline_path, reports::inference_timeline(run, out.timeline_gpus));
    if (run.scenario.gpus() > out.timeline_gpus) {
      run.warnings.push_back(fmt::format("timeline shows the first {} of {} GPUs",
                                         out.timeline_gpus, run.scenario.gpus()));
    }
    if (run.result.iterations > run.result.timeline.size()) {
      run.warnings.push_back(
          fmt::format("timeline shows the first {} of {} iterations (options.timeline_iterations)",
                      run.result.timeline.size(), run.result.iterations));
    }
  }
  if (!out.request_log_path.empty()) {
    if (run.simulated()) {
      reports::write_request_log(run, out.request_log_path);
    } else {
      run.warnings.push_back(fmt::format("--request-log: {} not written: nothing was simulated",
                                         out.request_log_path));
    }
  }
  print_report(reports::inference_report(run), reports::inference_summary(run), out);
}

void run_training_scenario(const Json& doc, const Outputs& out) {
  scenario::TrainingRun run =
      scenario::run_training(doc, progress_printer("run: steps simulated", kQuietS));
  if (!out.timeline_path.empty() && run.simulated()) {
    reports::TimelineOptions t;
    t.gpus_per_node = run.scenario.setup.gpus_per_node;
    t.max_gpus = out.timeline_gpus;
    t.model_layers = run.scenario.setup.model.model_layers();
    write_file_atomic(
        out.timeline_path,
        reports::chrome_trace(run.result.last_graph, run.result.steps.back().execution, t));
    const int gpus = run.scenario.setup.parallel.gpus();
    if (gpus > out.timeline_gpus) {
      run.warnings.push_back(
          fmt::format("timeline shows the first {} of {} GPUs", out.timeline_gpus, gpus));
    }
  }
  print_report(reports::training_report(run), reports::training_summary(run), out);
}

}  // namespace

int run_main(const Args& args) {
  po::options_description options("run options");
  std::string scenario_path;
  Outputs out;
  options.add_options()("scenario", po::value(&scenario_path), "scenario JSON file")(
      "output,o", po::value(&out.output_path), "write the JSON report to this file")(
      "json", "print the JSON report to stdout instead of the summary")(
      "timeline", po::value(&out.timeline_path),
      "write a timeline (Chrome trace JSON, opens in Perfetto): training, the last step's "
      "tasks per GPU stream; inference, the first options.timeline_iterations iterations per "
      "GPU")("timeline-max-gpus", po::value(&out.timeline_gpus),
             "GPUs to include in the timeline (default 64)")(
      "request-log", po::value(&out.request_log_path),
      "inference: write one JSON line per request (arrival, first token and finish times, "
      "TTFT, TPOT, end-to-end latency, preemptions, SLO met) in arrival order");
  po::positional_options_description positional;
  positional.add("scenario", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim run [scenario.json] [-o report.json] [--json] [--timeline trace.json]\n"
             "           [--request-log requests.jsonl]\n"
             "  Simulates a training step or, with \"workload\": {\"mode\": \"inference\"}, "
             "serving under request load.\n"
             "  Without a scenario, runs the embedded default: Mixtral-8x7B training on 2 nodes "
             "of 8 H100s\n  (examples/mixtral-8x7b-h100-16gpu.json).")) {
    return 0;
  }
  if (out.timeline_gpus < 1) throw Error("--timeline-max-gpus: expected a positive integer");
  out.json = vm.count("json") > 0;
  const Json doc =
      scenario_path.empty() ? embedded_example(kDefaultScenario) : load_json_file(scenario_path);
  if (scenario::is_inference(doc)) {
    run_inference_scenario(doc, out);
  } else {
    if (!out.request_log_path.empty()) {
      throw Error(
          "--request-log: only serving scenarios (workload.mode \"inference\") have "
          "requests");
    }
    run_training_scenario(doc, out);
  }
  return 0;
}

}  // namespace moesim::cli
