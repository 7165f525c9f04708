#pragma once
// Simulates training steps: builds each step's task graph, runs it on the
// engine, and summarises where the time went.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hwmodels/compute_cost.h"
#include "sim/collectives/collective.h"
#include "sim/core/progress.h"
#include "sim/exec/memory_model.h"
#include "sim/exec/step_builder.h"
#include "sim/exec/step_inputs.h"
#include "sim/exec/task_graph.h"

namespace moesim::exec {

struct TrainingStepSetup {
  ModelShape model;
  ParallelConfig parallel;
  TrainingWorkload workload;
  int gpus_per_node = 8;
  double hbm_capacity_bytes = 0;
  double peak_flops_per_gpu = 0;     // dense, compute dtype: the MFU denominator
  int gpu_sms = 0;                   // streaming multiprocessors (CUs) per GPU: 0 unknown
  double host_link_bytes_per_s = 0;  // each GPU's link to host memory, per direction
  double reserved_memory_bytes = 0;
  FrameworkOverheads framework;
  // All-reduce, reduce-scatter and all-gather algorithm (kAuto: as NCCL's
  // tuner picks per collective).
  coll::ReduceAlgorithm collective_algo = coll::ReduceAlgorithm::kAuto;
};

// Routing per step: routing[step][moe_layer].
using StepRouting = std::vector<std::vector<LayerRouting>>;

// One segment of the critical path, merged over consecutive tasks of the same
// category on the same GPU.
struct CriticalSegment {
  int gpu = 0;
  Category category = Category::kOther;
  double seconds = 0;
  int tasks = 0;
};

struct CriticalPath {
  std::array<double, kCategoryCount> seconds_by_category{};
  std::vector<CriticalSegment> segments;  // in time order
  int gpus_visited = 0;
  // The GPU whose routed-expert compute lies on the path longest (-1: none):
  // under routing imbalance, the overloaded expert's rank.
  int expert_compute_gpu = -1;
  double expert_compute_gpu_seconds = 0;
};

struct StepOutcome {
  double step_time_s = 0;
  coll::AlgorithmCounts algorithms;  // the collective algorithms that ran
  ExecutionResult execution;         // task_end etc. kept for timelines
  CriticalPath critical_path;
  uint64_t tasks = 0, collectives = 0, events = 0;
};

struct TrainingResult {
  std::vector<StepOutcome> steps;
  StepGraph last_graph;  // graph of the last simulated step (timeline export)
  double mean_step_time_s = 0;
  // 3 x forward FLOPs x tokens (see ModelShape), less the expert FLOPs of
  // token copies dropped by capacity: the work actually done.
  double model_flops_per_step = 0;
};

// Everything a step needs from the hardware side: kernel costs, and a timer
// for its collectives on the step's engine (a fresh one per step, so that a
// flow-level network starts empty).
using CollectiveTimerFactory = std::function<std::unique_ptr<coll::CollectiveTimer>(Engine&)>;
struct HardwareCosts {
  const hw::ComputeCostModel* compute = nullptr;
  CollectiveTimerFactory collectives;
};

// Peak memory and validity are checked by the caller (the scenario layer,
// sim/scenario); this simulates `routing.size()` steps (one graph each) and keeps the last graph,
// calling `progress` (if set) after each step.
TrainingResult simulate_training(const TrainingStepSetup& setup, const StepRouting& routing,
                                 const HardwareCosts& hardware, const ProgressFn& progress = {});

CriticalPath critical_path(const TaskGraph& graph, const ExecutionResult& result);

// Forward FLOPs per token that capacity dropping skips: for each MoE layer,
// top_k x its dropped fraction of offered copies x 2 x expert parameters.
double dropped_expert_flops_per_token(const ModelShape& model, const StepRouting& routing);

// Routed token copies a GPU receives for one layer and micro-batch: mean and
// max over GPUs, layers and samples.
RoutedCopies routed_copies_per_gpu(const StepRouting& routing);

}  // namespace moesim::exec
