// `moesim calibrate`: times kernels on this machine (the reference MoE
// kernel's building blocks on the CPU, or cuBLAS GEMMs and copy kernels on a
// CUDA GPU) and writes the calibration JSON that CalibratedCostModel reads.

#include <iostream>

#include <fmt/format.h>

#include "hwmodels/kernels/calibration.h"
#include "hwmodels/kernels/gpu_timer.h"
#include "reports/json_output.h"
#include "sim/app/commands.h"

namespace moesim::cli {

int calibrate_main(const Args& args) {
  po::options_description options("calibrate options");
  std::string device, output;
  int threads = 0;
  options.add_options()("device", po::value(&device)->default_value("cpu"),
                        "device to calibrate: cpu (the reference kernel on this CPU) or cuda "
                        "(the first GPU, in its own dtypes, through the CUDA module)")(
      "quick", "smaller grid, fewer repetitions (~30 s on 2 cores; seconds on a GPU)")(
      "smoke", "tiny grid, one repetition (seconds; for tests, not accurate)")(
      "threads", po::value(&threads)->default_value(0),
      "CPU threads (0: all hardware threads; cpu only)")(
      "output,o", po::value(&output), "calibration JSON to write (default: stdout)")(
      "quiet", "no progress lines on stderr");
  po::variables_map vm;
  if (!parse(args, options, {}, vm,
             "moesim calibrate --device cpu|cuda [--quick] [--threads N] -o calib.json")) {
    return 0;
  }
  if (device != "cpu" && device != "cuda") {
    throw Error(fmt::format("--device {}: expected cpu or cuda", device));
  }
  if (threads < 0) throw Error("--threads must be >= 0");
  if (device == "cuda" && threads != 0) throw Error("--threads: only for --device cpu");
  std::function<void(const std::string&)> progress;
  if (!vm.count("quiet")) progress = [](const std::string& s) { std::cerr << s << "\n"; };
  if (device == "cuda") {
    kern::GpuCalibrationOptions opt;
    opt.quick = vm.count("quick") > 0;
    opt.smoke = vm.count("smoke") > 0;
    opt.progress = progress;
    const std::unique_ptr<kern::GpuTimer> timer = kern::open_cuda_timer();
    emit(render_json(kern::run_gpu_calibration(*timer, opt)), output);
    return 0;
  }
  kern::CalibrationOptions opt;
  opt.quick = vm.count("quick") > 0;
  opt.smoke = vm.count("smoke") > 0;
  opt.threads = threads;
  opt.progress = progress;
  const auto calib = kern::run_calibration(opt);
  emit(render_json(calib), output);
  return 0;
}

}  // namespace moesim::cli
