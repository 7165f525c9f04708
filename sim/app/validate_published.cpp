// `moesim validate published`: predicted step times against published
// measurements (shared/reference/measurements.md): Megatron-Core MoE,
// Qwen3-235B-A22B on 256 H100s, two parallel layouts (yanring/Megatron-MoE-
// ModelZoo, best_practice/Qwen3/readme.md). Target: each within 20%, and the
// faster layout ranked faster.
//
// One model parameter comes from these runs: the framework's per-pass
// pipeline overhead (options.pipeline_pass_overhead_us) is calibrated on the
// DeepEP layout, so that row matches by construction; the all-to-all layout,
// and which of the two is faster, are predictions. Two more runs of the same
// table (TP4 EP8 PP8 VPP4; EP8 with FSDP) are shown as "reference" rows: not
// part of the target, there to show where the model is and is not accurate.

#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "sim/app/bench.h"
#include "sim/app/scenario_runner.h"
#include "sim/exec/scenario.h"

namespace moesim::cli {
namespace {

struct Published {
  const char* example;
  const char* layout;
  double step_time_s;
  double tflops_per_gpu;
  // "calibration": a model default was fitted to it; "prediction": the
  // validation target; "reference": other runs of the same table, shown for
  // what they say about the model's range, not part of the target.
  const char* role;
};

constexpr Published kQwen3[] = {
    {"qwen3-235b-h100-256gpu-a2a.json", "all-to-all TP2 EP8 PP32 VPP3 DP4", 24.2, 200,
     "prediction"},
    {"qwen3-235b-h100-256gpu-deepep.json", "DeepEP TP2 EP32 PP8 VPP4 DP16", 19.7, 245,
     "calibration"},
    {"qwen3-235b-h100-256gpu-deepep-tp4.json", "DeepEP TP4 EP8 PP8 VPP4 DP8", 29.0, 167,
     "reference"},
    {"qwen3-235b-h100-256gpu-deepep-fsdp.json", "DeepEP TP2 EP8 FSDP DP128 MBS4", 17.6, 276,
     "reference"},
};

}  // namespace

int validate_published_main(const Args& args) {
  po::options_description options("validate published options");
  options.add_options()("json", "print JSON instead of a table");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse(args, options, positional, vm, "moesim validate published [--json]")) return 0;
  OrderedJson out;
  out["source"] =
      "Megatron-Core MoE, Qwen3-235B-A22B on 256 H100 (yanring/Megatron-MoE-ModelZoo, "
      "best_practice/Qwen3/readme.md)";
  OrderedJson rows = OrderedJson::array();
  std::vector<double> predicted;
  double worst = 0;
  for (const Published& p : kQwen3) {
    const OrderedJson report = run_scenario_report(embedded_example(p.example));
    OrderedJson row;
    row["scenario"] = std::string("examples/") + p.example;
    row["layout"] = p.layout;
    row["published_step_time_s"] = p.step_time_s;
    row["published_tflops_per_gpu"] = p.tflops_per_gpu;
    row["role"] = p.role;
    const bool reference = std::string(p.role) == "reference";
    if (report["status"] != "ok") {
      row["predicted_step_time_s"] = nullptr;
      row["error"] = nullptr;
      row["status"] = report["status"];
      if (!reference) worst = INFINITY;
      predicted.push_back(INFINITY);
    } else {
      const double t = report["step_time_s"].get<double>();
      row["predicted_step_time_s"] = t;
      row["predicted_tflops_per_gpu"] = report["model_tflops_per_gpu"];
      row["error"] = (t - p.step_time_s) / p.step_time_s;
      if (!reference) worst = std::max(worst, std::fabs(t - p.step_time_s) / p.step_time_s);
      predicted.push_back(t);
    }
    rows.push_back(row);
  }
  out["calibrated"] = {{"options.pipeline_pass_overhead_us", exec::kDefaultPipelinePassOverheadUs},
                       {"on", "DeepEP TP2 EP32 PP8 VPP4 DP16"}};
  out["layouts"] = rows;
  // The target: the prediction and calibration rows (the two layouts of
  // shared/reference/measurements.md); reference rows are not part of it.
  out["max_abs_error"] = std::isfinite(worst) ? OrderedJson(worst) : OrderedJson(nullptr);
  out["within_20_percent"] = worst <= 0.2;
  out["faster_layout_ranked_faster"] = predicted[1] < predicted[0];
  if (vm.count("json")) {
    std::cout << render_json(out);
    return 0;
  }
  std::cout << out["source"].get<std::string>() << "\n";
  std::cout << fmt::format("  {:<36} {:>10} {:>10} {:>8}  {}\n", "layout", "published", "predicted",
                           "error", "role");
  for (const auto& r : rows) {
    std::cout << fmt::format(
        "  {:<36} {:>9.1f}s {:>10} {:>8}  {}\n", r["layout"].get<std::string>(),
        r["published_step_time_s"].get<double>(),
        r["predicted_step_time_s"].is_null()
            ? r["status"].get<std::string>()
            : fmt::format("{:.1f}s", r["predicted_step_time_s"].get<double>()),
        r["error"].is_null() ? std::string("-")
                             : fmt::format("{:+.1f}%", 100 * r["error"].get<double>()),
        r["role"].get<std::string>());
  }
  std::cout << fmt::format(
      "  calibration: options.pipeline_pass_overhead_us = {:g} fitted on the DeepEP row; "
      "the all-to-all row and the ranking are predicted\n",
      exec::kDefaultPipelinePassOverheadUs);
  std::cout << fmt::format(
      "  target (prediction and calibration rows): within 20%: {}   faster layout ranked faster: "
      "{}\n",
      out["within_20_percent"].get<bool>() ? "yes" : "no",
      out["faster_layout_ranked_faster"].get<bool>() ? "yes" : "no");
  return 0;
}

}  // namespace moesim::cli
