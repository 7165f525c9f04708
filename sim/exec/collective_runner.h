#pragma once
// Runs a step's collectives for the GraphExecutor.
//
// AnalyticCollectiveRunner: each collective takes the time a cost function
// gives for it in isolation (bottleneck-link estimates, no contention between
// concurrent collectives); durations are cached per distinct collective, so
// the thousands of identical all-to-alls of a large step cost one estimate.
// The flow-level runner (network_runner.h) instead plays every collective's
// flows on the shared network, so concurrent traffic contends.

#include <functional>
#include <map>
#include <tuple>
#include <vector>

#include "sim/engine/engine.h"
#include "sim/exec/step_builder.h"
#include "sim/exec/task_graph.h"

namespace moesim::exec {

// Seconds one collective takes alone. `matrix` holds token copies (n x n) for
// all-to-allv, else null; bytes = matrix * desc.bytes * desc.scale.
using CollectiveCostFn = std::function<double(
    const CollectiveDesc& desc, const std::vector<int>& ranks, const std::vector<int64_t>* matrix)>;

class AnalyticCollectiveRunner : public CollectiveRunner, private EventHandler {
 public:
  AnalyticCollectiveRunner(Engine& engine, const StepGraph& step, CollectiveCostFn cost);
  void start(GraphExecutor& executor, CollectiveId id, uint32_t payload) override;
  size_t distinct_estimates() const { return cache_.size(); }

 private:
  void on_event(uint64_t collective) override;

  Engine& engine_;
  const StepGraph& step_;
  CollectiveCostFn cost_;
  GraphExecutor* executor_ = nullptr;
  std::map<std::tuple<int, uint32_t, uint32_t, bool, double, double>, SimTime> cache_;
  std::vector<SimTime> by_payload_;  // memo per payload; max() = not yet computed
};

}  // namespace moesim::exec
