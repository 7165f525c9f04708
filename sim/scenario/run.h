#pragma once
// The main job: a scenario in, a typed result out. Used by `moesim run`,
// `sweep`, `search`, `validate published` and the benchmarks; deterministic
// (the same scenario gives the same result, byte for byte once serialised)
// and thread-safe.
//
//   resolve_scenario (scenario.h) -> routing plan (routing_plan.h, cached)
//   -> memory estimate (exec/memory_model.h) -> if it fits: simulate the
//   steps (exec/training_step.h) with the GPU's roofline and the scenario's
//   collective timer -> metrics (exec/training_metrics.h).

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/core/progress.h"
#include "sim/exec/memory_model.h"
#include "sim/exec/training_metrics.h"
#include "sim/exec/training_step.h"
#include "sim/scenario/routing_plan.h"
#include "sim/scenario/scenario.h"

namespace moesim::scenario {

// Above this share of dropped copies a run says so (1%: the level capacity
// factors are usually tuned to stay under).
inline constexpr double kDropWarningRate = 0.01;

// Expert load over everything the steps routed.
struct ExpertLayerStats {
  int layer = 0;
  std::vector<int64_t> load;  // token copies per expert slot
  int64_t tokens_routed = 0, tokens_dropped = 0;
  double max_over_mean_load = 0;
};
struct ExpertStats {
  std::vector<ExpertLayerStats> layers;
  int64_t tokens_routed = 0, tokens_dropped = 0;
  double drop_rate = 0;           // dropped / (routed + dropped)
  double max_over_mean_load = 0;  // worst layer
};
ExpertStats expert_stats(const RoutingPlan& plan);
ExpertStats expert_stats(std::span<const LayerLoad> layers);

struct TrainingRun {
  Scenario scenario;
  exec::MemoryEstimate memory;
  ExpertStats experts;
  // Empty when the strategy does not fit in memory (the step is not simulated).
  std::optional<exec::TrainingMetrics> metrics;
  exec::TrainingResult result;  // the simulated steps (last step's graph for timelines)
  std::vector<std::string> warnings;

  bool simulated() const { return metrics.has_value(); }
};

// Resolves, checks and simulates `doc`. Invalid scenarios throw moesim::Error
// (InvalidStrategy for strategies the model or cluster cannot run).
// `progress` (if set) hears of each simulated step.
TrainingRun run_training(const Json& doc, const ProgressFn& progress = {});

// Validates a scenario and estimates its peak memory per GPU without
// simulating it (cheap: used to prune strategy searches).
struct ScenarioCheck {
  bool valid = false;
  std::string reason_code;       // empty when valid, else e.g. "tp_divides_heads", "out_of_memory"
  std::string reason;            // one line a user can act on
  double peak_memory_bytes = 0;  // largest over GPUs (valid scenarios only)
  double memory_capacity_bytes = 0;  // HBM per GPU
};
ScenarioCheck check_scenario(const Json& doc);

}  // namespace moesim::scenario
