// `moesim calibrate`: times the reference MoE kernel's building blocks on this
// machine and writes the calibration JSON that CalibratedCostModel reads.

#include <iostream>

#include <fmt/format.h>

#include "hwmodels/kernels/calibration.h"
#include "reports/json_output.h"
#include "sim/app/commands.h"

namespace moesim::cli {

int calibrate_main(const Args& args) {
  po::options_description options("calibrate options");
  std::string device, output;
  int threads = 0;
  options.add_options()("device", po::value(&device)->default_value("cpu"),
                        "device to calibrate (cpu; GPUs use the roofline model)")(
      "quick", "smaller grid, fewer repetitions (~30 s on 2 cores)")(
      "smoke", "tiny grid, one repetition (seconds; for tests, not accurate)")(
      "threads", po::value(&threads)->default_value(0), "threads (0: all hardware threads)")(
      "output,o", po::value(&output), "calibration JSON to write (default: stdout)")(
      "quiet", "no progress lines on stderr");
  po::variables_map vm;
  if (!parse(args, options, {}, vm,
             "moesim calibrate --device cpu [--quick] [--threads N] -o calib.json")) {
    return 0;
  }
  if (device != "cpu") {
    throw Error(fmt::format("--device {}: only 'cpu' can be calibrated on this build", device));
  }
  if (threads < 0) throw Error("--threads must be >= 0");
  kern::CalibrationOptions opt;
  opt.quick = vm.count("quick") > 0;
  opt.smoke = vm.count("smoke") > 0;
  opt.threads = threads;
  if (!vm.count("quiet")) opt.progress = [](const std::string& s) { std::cerr << s << "\n"; };
  const auto calib = kern::run_calibration(opt);
  emit(render_json(calib), output);
  return 0;
}

}  // namespace moesim::cli
