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
  switch (algo) {
    case AllToAllAlgorithm::kDirect:
      return "direct";
    case AllToAllAlgorithm::kHierarchical:
      return "hierarchical";
    case AllToAllAlgorithm::kLowLatency:
      return "low_latency";
  }
  return "?";
}

std::optional<AllToAllAlgorithm> algorithm_from_name(std::string_view name) {
  for (AllToAllAlgorithm a : {AllToAllAlgorithm::kDirect, AllToAllAlgorithm::kHierarchical,
                              AllToAllAlgorithm::kLowLatency}) {
    if (name == algorithm_name(a)) return a;
  }
  return std::nullopt;
}

std::string_view reduce_algorithm_name(ReduceAlgorithm algo) {
  switch (algo) {
    case ReduceAlgorithm::kAuto:
      return "auto";
    case ReduceAlgorithm::kRing:
      return "ring";
    case ReduceAlgorithm::kTree:
      return "tree";
    case ReduceAlgorithm::kNvls:
      return "nvls";
  }
  return "?";
}

std::optional<ReduceAlgorithm> reduce_algorithm_from_name(std::string_view name) {
  for (ReduceAlgorithm a : {ReduceAlgorithm::kAuto, ReduceAlgorithm::kRing, ReduceAlgorithm::kTree,
                            ReduceAlgorithm::kNvls}) {
    if (name == reduce_algorithm_name(a)) return a;
  }
  return std::nullopt;
}

std::string_view counted_algorithm_name(CollectiveOp op, int algorithm) {
  if (op == CollectiveOp::kAllToAllV) {
    return algorithm_name(static_cast<AllToAllAlgorithm>(algorithm));
  }
  return reduce_algorithm_name(static_cast<ReduceAlgorithm>(algorithm));
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

void Collective::token_bytes(std::vector<double>& rank_bytes,
                             std::vector<double>& node_bytes) const {
  const size_t n = ranks.size();
  rank_bytes.resize(n * n);
  node_bytes.resize(n * n);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      // A combine returns each token along the dispatch's path: its matrix is
      // the dispatch's transposed.
      const size_t at = transpose ? j * n + i : i * n + j;
      rank_bytes[i * n + j] = static_cast<double>(rank_tokens[at]) * bytes_per_copy * fraction;
      node_bytes[i * n + j] = static_cast<double>(node_tokens[at]) * bytes_per_copy * fraction;
    }
  }
}

std::unique_ptr<CollectiveTimer> make_collective_timer(NetworkModel model, Engine& engine,
                                                       const hw::ClusterSpec& cluster) {
  if (model == NetworkModel::kFlow) return std::make_unique<FlowCollectives>(engine, cluster);
  return std::make_unique<AnalyticCollectives>(engine, cluster);
}

}  // namespace moesim::coll
