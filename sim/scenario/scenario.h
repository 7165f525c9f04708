#pragma once
// A scenario (one JSON document) resolved into a typed, validated Scenario:
// everything a simulation needs, with every default filled in.
//
//   { "model": preset | {"preset": ..., overrides} | inline,
//     "cluster": preset | {"preset": ..., "nodes": N, overrides} | inline,
//     "parallel": {...}, "workload": {...},
//     "routing": {"generator": "zipf:1.2", "seed": 7} | {"trace": "file.moetrace"},
//     "gating": {...}, "options": {...} }
//
// Every field is validated here, once, with its JSON path; impossible
// strategies throw InvalidStrategy (strategy.h) saying why. Past this layer
// nothing reads the JSON again.

#include <cstdint>
#include <string>

#include "hwmodels/cluster.h"
#include "hwmodels/compute_cost.h"
#include "sim/collectives/collective.h"
#include "sim/core/config.h"
#include "sim/exec/step_inputs.h"
#include "sim/exec/training_step.h"
#include "workloads/gating.h"
#include "workloads/model_config.h"

namespace moesim::scenario {

// The framework's host time between pipeline passes, in microseconds: none
// by default, as no source measures it. It used to be calibrated on the
// Megatron-Core Qwen3-235B-A22B DeepEP run (TP2 EP32 PP8 VPP4, 256 H100s,
// 19.7 s per step; yanring/Megatron-MoE-ModelZoo best_practice/Qwen3): 1 ms,
// then 250 us once issue #13's communication mechanisms explained part of
// the gap, then nothing once the attention backward was priced at its
// measured rate (Megatron-Core MoE report Table 9), which puts that run
// within 1% without it. A user can still set one (options).
inline constexpr double kDefaultPipelinePassOverheadUs = 0;

// options.network_model "auto" uses the flow-level network up to this many
// GPUs (its cost grows with the flows in flight), the analytic one above.
inline constexpr int kAutoFlowMaxGpus = 64;

// 1.5e8 tasks x ~65 bytes = ~10 GB, under half of the 24 GB machines moesim
// is developed on (bench step: 20.5 M tasks in 1.34 GB peak RSS).
inline constexpr double kDefaultMaxTasksPerStep = 1.5e8;

struct ScenarioOptions {
  uint64_t seed = 1;
  // How collectives are timed ("auto" in the JSON is resolved by GPU count).
  coll::NetworkModel network_model = coll::NetworkModel::kAnalytic;
  // All-reduce / reduce-scatter / all-gather algorithm: "auto" as NCCL's
  // tuner picks, or one of ring, tree, nvls forced where it applies.
  coll::ReduceAlgorithm collective_algo = coll::ReduceAlgorithm::kAuto;
  // Where kernel times come from (hwmodels/gpu_calibration.h): "auto" (the
  // shipped tables of published kernel benchmarks where the GPU has them, the
  // roofline elsewhere), "roofline", "builtin" (the tables, or an error), or
  // a calibration file (`moesim calibrate` output or the table format).
  std::string compute_calibration = "auto";
  int routing_samples = 2;  // distinct routings per MoE layer and step
  // Token routings generated per step at most; beyond it tokens are
  // subsampled and counts scaled (a warning says so).
  int64_t max_routings_per_step = 1 << 24;
  double reserved_memory_bytes = 2.0 * (1ull << 30);
  // exec::FrameworkOverheads::pipeline_pass_s, in microseconds (see
  // kDefaultPipelinePassOverheadUs); 0 simulates a perfect runtime.
  double pipeline_pass_overhead_us = kDefaultPipelinePassOverheadUs;
  // Largest task graph one step may build (tasks, ~65 bytes each with their
  // edges and execution state, measured on `bench step`): beyond it a step
  // is refused before it exhausts memory.
  double max_tasks_per_step = kDefaultMaxTasksPerStep;
};

// Where the routing comes from: a seeded generator, or a recorded trace
// (replayed through the "replay:FILE" generator).
struct RoutingSource {
  std::string generator = "uniform";  // generator spec (workloads/routing_generator.h)
  uint64_t seed = 1;
  std::string trace_path;  // empty unless a trace is replayed
};

// The document's "routing" object ({"generator": spec} or {"trace": file},
// "seed"), validated; the defaults when it is absent. Training and serving
// scenarios read it the same way.
RoutingSource parse_routing_source(ConfigObject& root);

struct Scenario {
  workloads::MoeModelConfig model;
  hw::ClusterSpec cluster;
  exec::TrainingStepSetup setup;  // model shape, strategy, batch, GPU figures
  workloads::GatingConfig gating;
  RoutingSource routing;
  ScenarioOptions options;
};

// The kernel cost model options.compute_calibration names, for the
// scenario's GPU. Errors name the option.
std::unique_ptr<hw::ComputeCostModel> compute_cost_model(const Scenario& scenario);
std::unique_ptr<hw::ComputeCostModel> compute_cost_model(const hw::GpuSpec& gpu,
                                                         const std::string& calibration);

// Validates and resolves a scenario document. Throws moesim::Error naming the
// field, or InvalidStrategy for a strategy the model or cluster cannot run.
Scenario resolve_scenario(const Json& doc);

// The scenario as reports show it: every section with its defaults filled in.
Json scenario_json(const Scenario& scenario);

// The execution model's view of a catalog model at `seq_len`, with `slots`
// expert slots (routed experts plus EPLB replicas).
// `with_mtp`: training shapes include the model's MTP modules' layers;
// serving ones leave them out.
exec::ModelShape model_shape(const workloads::MoeModelConfig& model, int64_t seq_len, int slots,
                             bool with_mtp);

}  // namespace moesim::scenario
