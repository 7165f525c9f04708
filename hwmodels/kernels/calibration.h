#pragma once
// Timing the reference kernel's building blocks on this machine and writing
// the tables CalibratedCostModel reads (format documented in
// hwmodels/calibrated_cost.h).

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

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

// Wall time of several cases measured in interleaved rounds, for a machine
// that other processes share. One untimed warm-up round (caches, page faults,
// BLAS buffers), then `rounds` rounds that each time every case once, so a
// burst of load lands on all cases alike rather than on whichever case was
// being timed back to back. A sample calls its case `calls` times in a row
// (enough to last ~sample_target_s, from the warm-up call) and divides.
// The estimate is the minimum sample: interference from other processes only
// ever adds time, so the fastest run is the one closest to the machine's own
// speed; the median is kept to report how noisy the run was.
struct TimedCase {
  double min_s = 0;     // fastest sample, per call: the estimate
  double median_s = 0;  // per call
  int calls = 1;        // calls per sample
  // How far typical runs were from the fastest: median / min - 1.
  double spread() const { return median_s / min_s - 1; }
};
// REQUIRES: rounds >= 1.
std::vector<TimedCase> time_interleaved(std::span<const std::function<void()>> cases, int rounds,
                                        double sample_target_s);

// Median and largest spread over a set of timed cases (for reports).
nlohmann::ordered_json spread_summary(std::span<const double> spreads);

// Splits cases needing `bytes[i]` of memory into consecutive batches that
// each stay under `budget_bytes` (a case above the budget is a batch alone):
// cases are interleaved within a batch, whose buffers are all alive at once.
// Returns [begin, end) index pairs covering all cases in order.
std::vector<std::pair<size_t, size_t>> batches_under(std::span<const double> bytes,
                                                     double budget_bytes);

// Memory a batch of interleaved cases may hold: 3 GiB, enough for all 14
// `validate kernel` configurations (2.95 GiB of weights, those that differ only
// in routing sharing theirs) and every memory-bound calibration shape, so each
// case's repetitions are spread over the whole run. The development machine
// has 23 GiB.
inline constexpr double kInterleaveBudgetBytes = 3.0 * (1 << 30);

// Achieved FLOP/s of a large square SGEMM (n x n x n) through OpenBLAS.
double measure_peak_sgemm_flops_per_s(int64_t n, int reps);

// CPU model, hardware threads, OpenBLAS build: for reports.
nlohmann::ordered_json describe_machine();

}  // namespace moesim::kern
