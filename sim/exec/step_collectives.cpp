#include "sim/exec/step_collectives.h"

namespace moesim::exec {

StepCollectives::StepCollectives(const StepGraph& step, coll::CollectiveTimer& timer,
                                 coll::AllToAllAlgorithm algorithm, coll::ReduceAlgorithm reduce)
    : step_(step),
      timer_(timer),
      algorithm_(algorithm),
      reduce_(reduce),
      key_by_payload_(step.collectives.size(), UINT32_MAX) {}

uint64_t StepCollectives::key_of(uint32_t payload) {
  uint32_t& key = key_by_payload_[payload];
  if (key == UINT32_MAX) {
    const CollectiveDesc& d = step_.collectives[payload];
    const auto identity = std::make_tuple(static_cast<int>(d.op), d.group, d.matrix, d.transpose,
                                          d.fraction, d.bytes, d.point_to_point);
    key = keys_.emplace(identity, static_cast<uint32_t>(keys_.size())).first->second;
  }
  return key;
}

void StepCollectives::start(GraphExecutor& executor, CollectiveId id, uint32_t payload) {
  executor_ = &executor;
  const CollectiveDesc& d = step_.collectives[payload];
  coll::Collective c;
  c.op = d.op;
  c.ranks = step_.groups[d.group];
  c.bytes = d.bytes;
  if (d.op == CollectiveOp::kAllToAllV) {
    const StepGraph::Dispatch& dispatch = step_.dispatches[d.matrix];
    if (dispatch.rank_tokens.empty()) {
      c.token_copies = dispatch.copies;
    } else {
      c.rank_tokens = dispatch.rank_tokens;
      c.node_tokens = dispatch.node_tokens;
    }
    c.bytes_per_copy = d.bytes;
    c.transpose = d.transpose;
    c.fraction = d.fraction;
  }
  c.algorithm = d.point_to_point ? coll::AllToAllAlgorithm::kHierarchical : algorithm_;
  c.reduce = reduce_;
  c.key = key_of(payload);
  timer_.start(c, *this, id);
}

void StepCollectives::on_event(uint64_t collective) {
  executor_->collective_done(static_cast<CollectiveId>(collective));
}

}  // namespace moesim::exec
