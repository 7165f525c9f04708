#include "sim/app/flow_collective_runner.h"

namespace moesim::cli {

FlowCollectiveRunner::FlowCollectiveRunner(Engine& engine, const exec::StepGraph& step,
                                           const hw::ClusterSpec& cluster,
                                           exec::AllToAllAlgorithm algo)
    : step_(step), network_(engine, cluster), algo_(network_algo(algo)) {}

void FlowCollectiveRunner::start(exec::GraphExecutor& executor, exec::CollectiveId id,
                                 uint32_t payload) {
  executor_ = &executor;
  const exec::CollectiveDesc& d = step_.collectives[payload];
  const std::vector<int>& ranks = step_.groups[d.group];
  switch (d.op) {
    case exec::CollectiveOp::kAllToAllV: {
      d.all_to_allv_bytes(step_.matrices[d.matrix], ranks.size(), bytes_);
      network_.all_to_allv(ranks, bytes_, algo_, *this, id);
      return;
    }
    case exec::CollectiveOp::kAllReduce:
      network_.all_reduce(ranks, d.bytes, *this, id);
      return;
    case exec::CollectiveOp::kReduceScatter:
      network_.reduce_scatter(ranks, d.bytes, *this, id);
      return;
    case exec::CollectiveOp::kAllGather:
      network_.all_gather(ranks, d.bytes, *this, id);
      return;
    case exec::CollectiveOp::kSendRecv:
      network_.send_recv(ranks[0], ranks[1], d.bytes, *this, id);
      return;
  }
}

void FlowCollectiveRunner::on_event(uint64_t collective) {
  executor_->collective_done(static_cast<exec::CollectiveId>(collective));
}

}  // namespace moesim::cli
