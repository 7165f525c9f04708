#pragma once
// Predicted against published step times (shared/reference/measurements.md):
// Megatron-Core MoE, Qwen3-235B-A22B on 256 H100s, two parallel layouts
// (yanring/Megatron-MoE-ModelZoo, best_practice/Qwen3/readme.md). Target:
// each within 20%, and the faster layout ranked faster.
//
// Nothing is calibrated on these runs (options.pipeline_pass_overhead_us,
// once fitted to the DeepEP layout, defaults to 0): both layouts, and which
// of the two is faster, are predictions. Two more runs of the same
// table (TP4 EP8 PP8 VPP4; EP8 with FSDP) are shown as "reference" rows: not
// part of the target, there to show where the model is and is not accurate.
// The readme's long-context table (TP4 EP8 PP8 VPP4, 16K-128K tokens with
// context parallelism 1-8, each dropless and with forced balance) gives
// eight more predictions: their step times are derived from the published
// TFLOPS with Megatron-LM's FLOP count (published.cpp). The forced-balance
// rows (uniform routing) test the model apart from routing skew; each
// length's pair shows what imbalance costs, published against predicted
// with the example's generator.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sim/core/config.h"

namespace moesim::explore {

struct PublishedComparison {
  std::string scenario;  // examples/<file>
  std::string layout;
  double published_step_time_s = 0, published_tflops_per_gpu = 0;
  // "prediction": the validation target; "reference": shown, not part of
  // the target ("calibration": a model default was fitted to it; none is).
  std::string role;
  std::string status;  // the report's status ("ok", "out_of_memory")
  std::optional<double> predicted_step_time_s, predicted_tflops_per_gpu, error;
};

// The dropless step time over the forced-balance one at one sequence length.
struct ImbalanceCost {
  int64_t seq_len = 0;
  double published = 0, predicted = 0;
};

// DeepSeek-V3's own pre-training, as its technical report states it
// (arXiv:2412.19437, section 1: "each trillion tokens requires only 180K H800
// GPU hours, i.e., 3.7 days on our cluster with 2048 H800 GPUs"), against
// the 2,048-GPU DualPipe example. A production average (the whole run, MTP
// module included), shown as a reference outside the target.
struct ProductionComparison {
  std::string source, scenario, row;
  double published_gpu_hours_per_trillion_tokens = 0;
  double published_step_time_s = 0;  // the same figure per step of the example's batch
  std::string status;                // the report's status
  std::optional<double> predicted_step_time_s, predicted_gpu_hours_per_trillion_tokens, error;
};

// Step times published by one source, against the model (rows as above).
struct PublishedTable {
  std::string source;
  std::vector<PublishedComparison> rows;
  double max_abs_error = 0;  // over the rows that ran
};

// The figure fitted to a published row, and the row.
struct Calibration {
  std::string field;  // the scenario field, e.g. "routing.generator"
  std::string value;  // as the examples set it
  std::string row;    // the layout whose figure fixes it
  double published_imbalance_cost = 0;
};

struct PublishedValidation {
  std::string source;
  Calibration calibration;
  std::vector<PublishedComparison> rows;
  std::vector<ImbalanceCost> imbalance;  // one per length with both rows
  std::optional<double> max_abs_error;   // over the target rows; empty if one did not run
  bool within_20_percent = false;
  bool faster_layout_ranked_faster = false;
  ProductionComparison production;
  // Megatron-Bridge's DGX-H100 MoE rows (published.cpp), force-balanced:
  // predictions outside the ModelZoo target above.
  PublishedTable bridge;
  // The H100 rows of NVIDIA's Megatron-Core MoE report (published.cpp),
  // force-balanced: predictions outside the ModelZoo target.
  PublishedTable core_report;
};

// `example(file)` returns one of examples/*.json. The training scenarios are
// simulated `jobs` at a time; the result does not depend on `jobs`.
PublishedValidation validate_published(const std::function<Json(const std::string&)>& example,
                                       int jobs);

}  // namespace moesim::explore
