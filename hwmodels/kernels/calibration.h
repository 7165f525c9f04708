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

#include "hwmodels/kernels/gpu_timer.h"

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

struct GpuCalibrationOptions {
  bool quick = false;  // smaller grid, fewer rounds
  bool smoke = false;  // a few points, one round: for tests, not for use
  std::function<void(const std::string&)> progress;  // may be empty
};

// The calibration of a GPU (`moesim calibrate --device cuda`), in the table
// format CalibratedCostModel reads ("device": "cuda"):
// - "gemm": achieved FLOP/s over an (m, n, k) grid in the primary dtype (BF16,
//   else TF32, else FP32: the first the GPU runs); "gemm_by_dtype": the same
//   grid in each other dtype the GPU runs (BF16, FP8, TF32, FP32; FP8 with
//   n >= 16). Points the GPU cannot run are removed a grid line at a time
//   (the line most of them share first); what was removed, and dtypes that
//   do not run at all, are listed in "not_measured" with the reason.
// - "peak_gemm_flops_per_s": a square GEMM of 8192 in the primary dtype;
//   "launch_overhead_s": one launch of an empty kernel in a stream of them.
// - "memory_bound": bandwidth of a copy kernel over sizes (bytes read +
//   written), each source taken past the L2 cache.
// - "grouped_gemm": one-launch grouped GEMMs of catalog MoE expert shapes in
//   the primary dtype, each next to the sum of its groups' GEMMs as the
//   table prices it (CalibratedCostModel::grouped_gemm_seconds): a check,
//   not read by the model. Attention is not timed (see "not_measured").
// Every point is the fastest of interleaved rounds (time_interleaved_samples
// over the timer's device clock), its spread reported under "timing".
// Throws moesim::Error when the timer fails or the GPU runs none of the dtypes.
nlohmann::ordered_json run_gpu_calibration(GpuTimer& timer, const GpuCalibrationOptions& options);

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

// The same interleaving with another clock: `sample(i, calls)` runs case i
// `calls` times in a row and returns the seconds they took (the GPU path
// reads CUDA events; time_interleaved the wall clock). At most max_calls
// calls per sample.
using CaseSampler = std::function<double(size_t case_index, int calls)>;
std::vector<TimedCase> time_interleaved_samples(size_t cases, int rounds, double sample_target_s,
                                                int max_calls, const CaseSampler& sample);

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
