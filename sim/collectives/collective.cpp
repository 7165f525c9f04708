#include "sim/collectives/collective.h"

#include "sim/collectives/analytic.h"
#include "sim/collectives/flow.h"

namespace moesim::coll {

std::string_view op_name(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::kAllToAllV:
      return "all_to_all";
    case CollectiveOp::kAllReduce:
      return "all_reduce";
    case CollectiveOp::kReduceScatter:
      return "reduce_scatter";
    case CollectiveOp::kAllGather:
      return "all_gather";
    case CollectiveOp::kSendRecv:
      return "send_recv";
  }
  return "?";
}

std::string_view algorithm_name(AllToAllAlgorithm algo) {
  return algo == AllToAllAlgorithm::kDirect ? "direct" : "hierarchical";
}

std::optional<AllToAllAlgorithm> algorithm_from_name(std::string_view name) {
  if (name == "direct") return AllToAllAlgorithm::kDirect;
  if (name == "hierarchical") return AllToAllAlgorithm::kHierarchical;
  return std::nullopt;
}

std::string_view network_model_name(NetworkModel model) {
  return model == NetworkModel::kFlow ? "flow" : "analytic";
}

double bus_bandwidth_factor(CollectiveOp op, int n) {
  switch (op) {
    case CollectiveOp::kAllReduce:
      return 2.0 * (n - 1) / n;
    case CollectiveOp::kSendRecv:
      return 1;
    case CollectiveOp::kAllToAllV:
    case CollectiveOp::kReduceScatter:
    case CollectiveOp::kAllGather:
      return (n - 1.0) / n;
  }
  return 1;
}

void Collective::byte_matrix(std::vector<double>& out) const {
  const size_t n = ranks.size();
  if (!matrix_bytes.empty()) {
    out.assign(matrix_bytes.begin(), matrix_bytes.end());
    return;
  }
  out.resize(n * n);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      // A combine sends the dispatch's copies back: the transpose.
      const int64_t copies = transpose ? token_copies[j * n + i] : token_copies[i * n + j];
      out[i * n + j] = static_cast<double>(copies) * bytes_per_copy * fraction;
    }
  }
}

std::unique_ptr<CollectiveTimer> make_collective_timer(NetworkModel model, Engine& engine,
                                                       const hw::ClusterSpec& cluster) {
  if (model == NetworkModel::kFlow) return std::make_unique<FlowCollectives>(engine, cluster);
  return std::make_unique<AnalyticCollectives>(engine, cluster);
}

}  // namespace moesim::coll
