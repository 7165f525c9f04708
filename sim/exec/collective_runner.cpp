#include "sim/exec/collective_runner.h"

namespace moesim::exec {

AnalyticCollectiveRunner::AnalyticCollectiveRunner(Engine& engine, const StepGraph& step,
                                                   CollectiveCostFn cost)
    : engine_(engine),
      step_(step),
      cost_(std::move(cost)),
      by_payload_(step.collectives.size(), SimTime::max()) {}

void AnalyticCollectiveRunner::start(GraphExecutor& executor, CollectiveId id, uint32_t payload) {
  executor_ = &executor;
  SimTime& memo = by_payload_[payload];
  if (memo == SimTime::max()) {
    const CollectiveDesc& d = step_.collectives[payload];
    const auto key =
        std::make_tuple(static_cast<int>(d.op), d.group, d.matrix, d.transpose, d.scale, d.bytes);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      const std::vector<int64_t>* matrix =
          d.matrix == UINT32_MAX ? nullptr : &step_.matrices[d.matrix];
      const double s = cost_(d, step_.groups[d.group], matrix);
      it = cache_.emplace(key, SimTime::from_seconds(s)).first;
    }
    memo = it->second;
  }
  engine_.schedule_after(memo, *this, id);
}

void AnalyticCollectiveRunner::on_event(uint64_t collective) {
  executor_->collective_done(static_cast<CollectiveId>(collective));
}

}  // namespace moesim::exec
