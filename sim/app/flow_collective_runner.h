#pragma once
// Runs a step's collectives on the flow-level network (sim/network): every
// transfer of every collective is a flow sharing link bandwidth max-min
// fairly with whatever else is in flight, so concurrent collectives (a
// dispatch and a gradient reduction on the same NIC, pipeline sends in both
// directions) slow each other down, which the analytic runner ignores.
// Costs grow with the flows in flight: meant for steps of up to a few
// hundred GPUs.

#include "hwmodels/cluster.h"
#include "sim/engine/engine.h"
#include "sim/exec/step_builder.h"
#include "sim/exec/task_graph.h"
#include "sim/network/flow_network.h"

namespace moesim::cli {

// The network model's name for a strategy's all-to-all algorithm.
inline net::AllToAllAlgo network_algo(exec::AllToAllAlgorithm algo) {
  return algo == exec::AllToAllAlgorithm::kDirect ? net::AllToAllAlgo::kDirect
                                                  : net::AllToAllAlgo::kHierarchical;
}

class FlowCollectiveRunner : public exec::CollectiveRunner, private EventHandler {
 public:
  FlowCollectiveRunner(Engine& engine, const exec::StepGraph& step, const hw::ClusterSpec& cluster,
                       exec::AllToAllAlgorithm algo);
  void start(exec::GraphExecutor& executor, exec::CollectiveId id, uint32_t payload) override;

  const net::FlowNetwork& network() const { return network_; }

 private:
  void on_event(uint64_t collective) override;

  const exec::StepGraph& step_;
  net::FlowNetwork network_;
  net::AllToAllAlgo algo_;
  exec::GraphExecutor* executor_ = nullptr;
  std::vector<double> bytes_;  // scratch: one all-to-allv's byte matrix
};

}  // namespace moesim::cli
