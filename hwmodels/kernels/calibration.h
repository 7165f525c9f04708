#pragma once
// Timing the reference kernel's building blocks on this machine and writing
// the tables CalibratedCostModel reads (format documented in
// hwmodels/calibrated_cost.h).

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace moesim::kern {

struct CalibrationOptions {
  bool quick = false;  // smaller grid and fewer repetitions (~20-30 s on 2 cores)
  bool smoke = false;  // a few points, one repetition: for tests, not for use
  int threads = 0;     // 0: all hardware threads
  // Progress lines ("gemm 120/480") for the CLI; may be empty.
  std::function<void(const std::string&)> progress;
};

// Runs the whole calibration: GEMM grid, memory-bound steps of the layer, the
// peak (large square SGEMM) and the machine description.
nlohmann::ordered_json run_calibration(const CalibrationOptions& options);

// Median wall time of `fn` over repetitions after one warm-up call: at least
// `min_reps`, more while the total stays under `target_s` (max `max_reps`).
double median_seconds(const std::function<void()>& fn, int min_reps, double target_s,
                      int max_reps = 50);

// Mean wall time over the same repetitions. The tables use means: a layer
// makes many calls in a row, and the median of their sum is close to the sum
// of the calls' means (stalls from a shared machine included), not of their
// medians.
double mean_seconds(const std::function<void()>& fn, int min_reps, double target_s,
                    int max_reps = 200);

// Achieved FLOP/s of a large square SGEMM (n x n x n) through OpenBLAS.
double measure_peak_sgemm_flops_per_s(int64_t n, int reps);

// CPU model, hardware threads, OpenBLAS build: for reports.
nlohmann::ordered_json describe_machine();

}  // namespace moesim::kern
