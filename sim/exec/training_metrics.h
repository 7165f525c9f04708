#pragma once
// What simulated training steps achieved and where their time went, computed
// once from the execution into a typed result; reports only serialise it.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "sim/exec/task_graph.h"
#include "sim/exec/training_step.h"

namespace moesim::exec {

// Mean over GPUs and steps of each GPU's time account. The categories, the
// pipeline bubble and the idle time add up to the step time.
struct TimeBreakdown {
  std::array<double, kCategoryCount> exposed_s{};  // compute, and communication it waits on
  std::array<double, kCategoryCount> hidden_s{};   // communication overlapped by compute
  double pipeline_bubble_s = 0;
  double idle_s = 0;
};

struct GpuSummary {
  int gpu = 0, node = 0;
  double busy_s = 0;    // compute stream busy in the last step
  double idle_s = 0;    // step time minus busy
  double finish_s = 0;  // when its last task ended
  int64_t expert_token_copies = 0;
};

// Whether a scenario can spend time in category `c`: every category but the
// context-parallel ring's (cp > 1) and activation offload's (some module
// offloaded). Reports list only these, so that scenarios without the features
// keep their bytes.
bool category_in_use(Category c, const ParallelConfig& parallel);

struct TrainingMetrics {
  double step_time_s = 0;  // mean over the simulated steps
  std::vector<double> step_times_s;
  double tokens_per_step = 0;
  double tokens_per_s = 0, tokens_per_s_per_gpu = 0;
  double model_flops_per_step = 0;  // the work done (TrainingResult::model_flops_per_step)
  double model_tflops_per_gpu = 0;
  // Model FLOPs per step / (step time x GPUs x dense peak of the compute dtype).
  double mfu = 0;
  TimeBreakdown breakdown;
  // The largest exposed share: a category name, "pipeline_bubble" or "idle".
  std::string bottleneck;
  CriticalPath critical_path;                       // of the last step
  std::vector<GpuSummary> per_gpu;                  // last step
  uint64_t tasks = 0, collectives = 0, events = 0;  // last step
  coll::AlgorithmCounts algorithms;                 // collectives per algorithm, last step
};

TrainingMetrics training_metrics(const TrainingStepSetup& setup, const TrainingResult& result);

}  // namespace moesim::exec
