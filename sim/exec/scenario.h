#pragma once
// A scenario (one JSON document) resolved into everything a simulation needs:
//
//   { "model": preset | {"preset": ..., overrides} | inline,
//     "cluster": preset | {"preset": ..., "nodes": N, overrides} | inline,
//     "parallel": {...}, "workload": {...},
//     "routing": {"generator": "zipf:1.2", "seed": 7} | {"trace": "file.moetrace"},
//     "gating": {...}, "options": {...} }
//
// Every field is validated with its JSON path; impossible strategies throw
// InvalidStrategy saying why.

#include <cstdint>
#include <string>
#include <vector>

#include "hwmodels/cluster.h"
#include "sim/core/config.h"
#include "sim/exec/step_inputs.h"
#include "sim/exec/training_step.h"
#include "workloads/gating.h"
#include "workloads/model_config.h"

namespace moesim::exec {

// Calibrated, not measured: the one value that brings the Megatron-Core
// Qwen3-235B-A22B DeepEP run (TP2 EP32 PP8 VPP4, 256 H100s, 19.7 s per step;
// yanring/Megatron-MoE-ModelZoo best_practice/Qwen3) within 1% of its
// published step time. `moesim validate published` then predicts the other
// published layout (all-to-all, PP32 VPP3) with this value unchanged.
inline constexpr double kDefaultPipelinePassOverheadUs = 1000;

// options.network_model "auto" uses the flow-level network up to this many
// GPUs (its cost grows with the flows in flight), the analytic one above.
inline constexpr int kAutoFlowMaxGpus = 64;

struct ScenarioOptions {
  uint64_t seed = 1;
  // "analytic": each collective timed alone from its bottleneck links;
  // "flow": every transfer on the flow-level network, sharing links with
  // concurrent ones; "auto" (the default) resolves to one of them.
  std::string network_model = "auto";
  int routing_samples = 2;  // distinct routings per MoE layer and step
  // Token routings generated per step at most; beyond it tokens are
  // subsampled and counts scaled (a warning says so).
  int64_t max_routings_per_step = 1 << 24;
  double reserved_memory_bytes = 2.0 * (1ull << 30);
  // FrameworkOverheads::pipeline_pass_s, in microseconds. The default is
  // calibrated on one published Megatron-Core run (see
  // kDefaultPipelinePassOverheadUs); 0 simulates a perfect runtime.
  double pipeline_pass_overhead_us = kDefaultPipelinePassOverheadUs;
};

struct ResolvedScenario {
  Json input;
  workloads::MoeModelConfig model;
  hw::ClusterSpec cluster;
  TrainingStepSetup setup;
  workloads::GatingConfig gating;
  std::string generator;  // spec, or empty when a trace file is replayed
  uint64_t routing_seed = 1;
  std::string trace_path;
  ScenarioOptions options;

  Json resolved_json() const;  // the scenario with all defaults filled in
};

ResolvedScenario resolve_scenario(const Json& scenario);

ModelShape model_shape(const workloads::MoeModelConfig& model, int64_t seq_len, int slots);

// Routing per step, sampled from the generator and gated, with statistics.
struct RoutingPlan {
  StepRouting routing;
  struct LayerStats {
    int layer = 0;
    std::vector<int64_t> load;  // per slot, scaled to the step's token count
    int64_t dropped = 0;
  };
  std::vector<LayerStats> layers;  // summed over steps
  double subsample = 1;            // tokens represented by each generated token
  std::vector<std::string> warnings;
};
RoutingPlan plan_routing(const ResolvedScenario& s);

}  // namespace moesim::exec
