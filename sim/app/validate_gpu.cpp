// `moesim validate gpu-calibration`: the roofline's throughput against every
// point of a GPU calibration table (by default the published kernel
// benchmarks shipped for the GPU; hwmodels/calibration/). The comparison is
// hw::check_roofline; this file only prints it.

#include <iostream>

#include <fmt/format.h>

#include "hwmodels/gpu.h"
#include "hwmodels/gpu_calibration.h"
#include "hwmodels/gpu_roofline_check.h"
#include "reports/json_output.h"
#include "sim/app/cli.h"

namespace moesim::cli {
namespace {

OrderedJson check_json(const hw::RooflineCheck& check) {
  OrderedJson out;
  out["validation"] = "gpu-calibration";
  out["gpu"] = check.gpu;
  out["calibration"] = check.calibration;
  out["error_definition"] = "roofline_tflops / published_tflops - 1 (kernel time, launch excluded)";
  OrderedJson rows = OrderedJson::array();
  for (const hw::RooflineCheckRow& r : check.rows) {
    OrderedJson j;
    j["kind"] = r.kind;
    j["shape"] = r.shape;
    j["dtype"] = std::string(hw::dtype_name(r.dtype));
    j["source"] = r.source;
    j["measured_on"] = r.measured_on;
    j["published_tflops"] = r.published_flops_per_s / 1e12;
    j["roofline_tflops"] = r.roofline_flops_per_s / 1e12;
    j["roofline_error"] = r.roofline_error();
    rows.push_back(std::move(j));
  }
  out["median_abs_error"] = check.median_abs_error;
  out["max_abs_error"] = check.max_abs_error;
  out["points"] = std::move(rows);
  return out;
}

void print_table(const hw::RooflineCheck& check, bool markdown) {
  if (markdown) {
    std::cout << "| kind | shape | dtype | source (measured on) | published TFLOPS | roofline "
                 "TFLOPS | roofline error |\n|:--|:--|:--|:--|--:|--:|--:|\n";
  } else {
    std::cout << fmt::format("roofline of {} against {}\n", check.gpu, check.calibration);
    std::cout << fmt::format("  {:<13} {:<42} {:<5} {:<18} {:>9} {:>9} {:>8}\n", "kind", "shape",
                             "dtype", "source", "published", "roofline", "error");
  }
  for (const hw::RooflineCheckRow& r : check.rows) {
    if (markdown) {
      std::cout << fmt::format("| {} | {} | {} | {} ({}) | {:.1f} | {:.1f} | {:+.1f}% |\n", r.kind,
                               r.shape, hw::dtype_name(r.dtype), r.source, r.measured_on,
                               r.published_flops_per_s / 1e12, r.roofline_flops_per_s / 1e12,
                               100 * r.roofline_error());
    } else {
      std::cout << fmt::format("  {:<13} {:<42} {:<5} {:<18} {:>9.1f} {:>9.1f} {:>+7.1f}%\n",
                               r.kind, r.shape, hw::dtype_name(r.dtype), r.source,
                               r.published_flops_per_s / 1e12, r.roofline_flops_per_s / 1e12,
                               100 * r.roofline_error());
    }
  }
  std::cout << fmt::format("{}{} points: median |error| {:.1f}%, max |error| {:.1f}%\n",
                           markdown ? "\n" : "  ", check.rows.size(), 100 * check.median_abs_error,
                           100 * check.max_abs_error);
}

}  // namespace

int validate_gpu_main(const Args& args) {
  po::options_description options("validate gpu-calibration options");
  std::string gpu_name, calibration, output;
  options.add_options()("gpu", po::value(&gpu_name)->default_value("h100-sxm"),
                        "GPU preset whose roofline is checked")(
      "calib", po::value(&calibration)->default_value("builtin"),
      "GPU calibration table: 'builtin' (shipped for --gpu) or a moesim-gpu-calibration file")(
      "json", "print JSON instead of a table")("markdown", "print a Markdown table")(
      "output,o", po::value(&output), "write the JSON report here instead of stdout");
  po::variables_map vm;
  if (!parse(args, options, {}, vm,
             "moesim validate gpu-calibration [--gpu h100-sxm] [--calib builtin|FILE] [--json]")) {
    return 0;
  }
  const hw::GpuSpec gpu = hw::resolve_gpu(Json(gpu_name), "--gpu");
  std::optional<hw::GpuCalibration> table;
  if (calibration == "builtin") {
    table = hw::builtin_gpu_calibration(gpu.name);
    if (!table) {
      std::string known;
      for (const auto& n : hw::builtin_gpu_calibration_names()) {
        known += (known.empty() ? "" : ", ") + n;
      }
      throw Error(
          fmt::format("--gpu {}: no built-in GPU calibration (built-in: {})", gpu.name, known));
    }
  } else {
    table = hw::parse_gpu_calibration(load_json_file(calibration), calibration);
  }
  if (table->gemm.empty() && table->grouped_gemm.empty() && table->attention.empty() &&
      table->wgrad_gemm.empty() && table->grouped_wgrad_gemm.empty()) {
    throw Error(
        fmt::format("{}: no GEMM, grouped GEMM or attention points to check", table->origin));
  }
  const hw::RooflineCheck check = hw::check_roofline(gpu, *table);
  if (vm.count("json") || !output.empty()) {
    emit(render_json(check_json(check)), output);
  } else {
    print_table(check, vm.count("markdown") > 0);
  }
  return 0;
}

}  // namespace moesim::cli
