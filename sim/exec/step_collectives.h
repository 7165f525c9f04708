#pragma once
// Connects a step's task graph to the collective timer (sim/collectives): when
// the executor starts collective `id`, its description in StepGraph becomes a
// coll::Collective over its group's ranks, timed by whichever CollectiveTimer
// the step was given (analytic or flow-level). Collectives with the same
// description (op, group, matrix, direction, fraction, bytes, point to point) share a timer
// key, so the thousands of identical all-to-alls of a large step are
// estimated once by the analytic timer.

#include <map>
#include <tuple>
#include <vector>

#include "sim/collectives/collective.h"
#include "sim/exec/step_builder.h"
#include "sim/exec/task_graph.h"

namespace moesim::exec {

class StepCollectives : public CollectiveRunner, private EventHandler {
 public:
  // `algorithm`: how the step's all-to-allvs are carried out.
  StepCollectives(const StepGraph& step, coll::CollectiveTimer& timer,
                  coll::AllToAllAlgorithm algorithm,
                  coll::ReduceAlgorithm reduce = coll::ReduceAlgorithm::kAuto);
  void start(GraphExecutor& executor, CollectiveId id, uint32_t payload) override;

 private:
  void on_event(uint64_t collective) override;
  uint64_t key_of(uint32_t payload);

  const StepGraph& step_;
  coll::CollectiveTimer& timer_;
  coll::AllToAllAlgorithm algorithm_;
  coll::ReduceAlgorithm reduce_;
  GraphExecutor* executor_ = nullptr;
  std::vector<uint32_t> key_by_payload_;  // UINT32_MAX: not yet interned
  std::map<std::tuple<int, uint32_t, uint32_t, bool, double, double, bool>, uint32_t> keys_;
};

}  // namespace moesim::exec
