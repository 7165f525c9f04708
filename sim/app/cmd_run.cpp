// `moesim run`: simulate a scenario and report.
//
// Until the execution model lands, the only scenario kind is the engine's
// reference model (an M/M/1 queue); the embedded default runs it.

#include <iostream>

#include <fmt/format.h>

#include "reports/json_output.h"
#include "sim/app/commands.h"
#include "sim/core/config.h"
#include "sim/core/file_io.h"
#include "sim/demo/mm1.h"

namespace moesim::cli {
namespace {

constexpr std::string_view kDefaultScenario = R"({
  "demo": "mm1",
  "arrival_rate_per_s": 800000,
  "service_rate_per_s": 1000000,
  "customers": 1000000,
  "seed": 1
})";

}  // namespace

int run_main(const Args& args) {
  po::options_description options("run options");
  std::string scenario_path, output_path;
  options.add_options()("scenario", po::value(&scenario_path), "scenario JSON file")(
      "output,o", po::value(&output_path), "write the JSON report to this file")(
      "json", "print the JSON report to stdout instead of the summary");
  po::positional_options_description positional;
  positional.add("scenario", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim run [scenario.json] [-o report.json] [--json]")) {
    return 0;
  }

  const std::string source = scenario_path.empty() ? "(embedded default scenario)" : scenario_path;
  const Json doc =
      scenario_path.empty() ? parse_json(kDefaultScenario, source) : load_json_file(scenario_path);
  ConfigObject scenario(doc, "");
  scenario.choice("demo", {"mm1"});
  MM1Config config;
  config.arrival_rate_per_s = scenario.number("arrival_rate_per_s", 1e-9, 1e15);
  config.service_rate_per_s = scenario.number("service_rate_per_s", 1e-9, 1e15);
  config.customers = static_cast<uint64_t>(scenario.integer("customers", 1, INT64_MAX));
  config.seed = static_cast<uint64_t>(scenario.integer_or("seed", 1, 0, INT64_MAX));
  scenario.finish();
  const MM1Result r = simulate_mm1(config);

  OrderedJson report;
  report["schema_version"] = "0.1";
  report["scenario"] = OrderedJson::parse(doc.dump());
  report["customers_served"] = r.customers_served;
  report["events"] = r.events;
  report["simulated_time_s"] = r.simulated_time_s;
  report["mean_time_in_system_s"] = r.mean_time_in_system_s;
  report["analytic_time_in_system_s"] = r.analytic_time_in_system_s;
  report["mean_number_in_system"] = r.mean_number_in_system;
  report["throughput_per_s"] = r.throughput_per_s;
  report["utilization"] = r.utilization;

  if (!output_path.empty()) write_json_file(output_path, report);
  if (vm.count("json")) {
    emit(render_json(report), "");
  } else {
    std::cout << fmt::format(
        "M/M/1 demo: {} customers, {} events, {:.6f} s simulated\n"
        "  mean time in system {:.4f} us (analytic {:.4f} us), utilization {:.3f}\n",
        r.customers_served, r.events, r.simulated_time_s, r.mean_time_in_system_s * 1e6,
        r.analytic_time_in_system_s * 1e6, r.utilization);
    if (!output_path.empty()) std::cout << "report: " << output_path << "\n";
  }
  return 0;
}

}  // namespace moesim::cli
