#pragma once
// Collective communication as the rest of the simulator sees it: what a
// collective is (CollectiveOp, its ranks and bytes), how it may be carried out
// (AllToAllAlgorithm, ReduceAlgorithm), and the one interface that times it
// (CollectiveTimer).
//
// Two implementations live beside this header: AnalyticCollectives
// (analytic.h: each collective timed from the bytes on its bottleneck links,
// closed form) and FlowCollectives (flow.h: every transfer played on the
// flow-level network, sharing links with whatever else is in flight).
// make_collective_timer() picks one by NetworkModel. Both carry out the same
// algorithms, and both let choose_reduce_algorithm() pick the algorithm of
// an all-reduce, reduce-scatter or all-gather the way NCCL's tuner does.
//
// Byte conventions follow NCCL-tests: `bytes` of all-reduce, reduce-scatter
// and all-gather is the full buffer per rank; send/recv moves `bytes` from
// ranks[0] to ranks[1]; all-to-allv moves an n x n byte matrix (row = sender,
// in `ranks` order; the diagonal stays local).

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "sim/engine/engine.h"

namespace moesim::hw {
struct ClusterSpec;
}

namespace moesim::coll {

enum class CollectiveOp : uint8_t { kAllToAllV, kAllReduce, kReduceScatter, kAllGather, kSendRecv };
inline constexpr int kCollectiveOps = 5;

enum class AllToAllAlgorithm : uint8_t {
  // Every pair exchanges directly: from the sender's NIC to the receiver's
  // NIC, across the spine when their rails differ; one copy per expert.
  kDirect,
  // Rail-aligned, with an NVLink hop. A plain byte matrix goes as NCCL's PXN
  // sends it: over NVLink to the GPU on the destination's rail, then on that
  // rail. Expert traffic given as tokens (Collective::rank_tokens) goes as
  // DeepEP's normal kernels send it: a token crosses the network once per
  // destination node, to the GPU of its own rail there, and fans out over
  // NVLink to every destination GPU of that node; combine is the reverse.
  kHierarchical,
  // DeepEP's low-latency kernels: every token copy written straight to its
  // destination as its own message, through the NIC, or over NVLink for
  // same-node peers where the cluster has node.low_latency_nvlink.
  kLowLatency,
};

// All-reduce, reduce-scatter and all-gather (NCCL's algorithms).
enum class ReduceAlgorithm : uint8_t {
  kAuto,  // whichever the estimates say is fastest, as NCCL's tuner picks
  kRing,  // one channel per NIC across nodes (multi-rail)
  kTree,  // all-reduce across nodes: chains in nodes, double binary tree between them
  kNvls,  // NVLink SHARP inside one NVSwitch node
};

// How collectives are timed. The scenario's "auto" is resolved before this.
enum class NetworkModel : uint8_t { kAnalytic, kFlow };

std::string_view op_name(CollectiveOp op);                     // "all_to_all", "all_reduce", ...
std::string_view algorithm_name(AllToAllAlgorithm algo);       // "direct", "hierarchical", ...
std::string_view reduce_algorithm_name(ReduceAlgorithm algo);  // "auto", "ring", ...
std::string_view network_model_name(NetworkModel model);       // "analytic", "flow"
std::optional<AllToAllAlgorithm> algorithm_from_name(std::string_view name);
std::optional<ReduceAlgorithm> reduce_algorithm_from_name(std::string_view name);

// NCCL-tests bus bandwidth factor (doc/PERFORMANCE.md): busbw = algbw x
// 2(n-1)/n for all-reduce, (n-1)/n for reduce-scatter, all-gather and
// all-to-all, 1 for send/recv.
double bus_bandwidth_factor(CollectiveOp op, int ranks);

// One collective to time. All spans must stay valid until start() returns.
struct Collective {
  CollectiveOp op = CollectiveOp::kAllReduce;
  std::span<const int> ranks;  // global GPU ranks, in group order
  // All-reduce, reduce-scatter, all-gather, send/recv (see the conventions above).
  double bytes = 0;
  ReduceAlgorithm reduce = ReduceAlgorithm::kAuto;
  // All-to-allv, one of: the n x n byte matrix itself (row = sender, in
  // `ranks` order); or the n x n token-copy matrix with the bytes each copy
  // carries; or, for node-deduplicated dispatch (kHierarchical), the tokens
  // each sender sends each rank once (rank_tokens) and each remote node once
  // (node_tokens, counted at the first destination rank on that node; equal
  // to rank_tokens within the sender's node), with the bytes each token
  // carries. `transpose`: the reverse direction (a combine sends the
  // dispatch's tokens back); `fraction`: the part that moves (one chunk).
  std::span<const double> matrix_bytes;
  std::span<const int64_t> token_copies;
  std::span<const int64_t> rank_tokens;
  std::span<const int64_t> node_tokens;
  double bytes_per_copy = 0;
  bool transpose = false;
  double fraction = 1;
  AllToAllAlgorithm algorithm = AllToAllAlgorithm::kHierarchical;
  // Requests with the same key are the same collective (same op, ranks,
  // bytes, matrix, algorithm): implementations may time a key once. Keys are
  // small integers (a timer may keep a table indexed by them).
  uint64_t key = 0;

  // All-to-allv given as a byte or token-copy matrix: the n x n byte matrix
  // (row = sender). REQUIRES: rank_tokens is empty.
  void byte_matrix(std::vector<double>& out) const;
  // All-to-allv given as tokens (rank_tokens): the bytes each sender sends
  // each rank once, and each remote node once (at its first rank there),
  // both n x n in the direction of travel.
  void token_bytes(std::vector<double>& rank_bytes, std::vector<double>& node_bytes) const;
  bool deduplicated() const { return !rank_tokens.empty(); }
};

// How often each algorithm ran, per op: what reports show as "which
// algorithm ran" (an all-to-all counts under its AllToAllAlgorithm; a
// reduction under the ReduceAlgorithm chosen; send/recv under ring).
struct AlgorithmCounts {
  std::array<std::array<uint64_t, 4>, kCollectiveOps> count{};
  void add(CollectiveOp op, int algorithm) { ++count[static_cast<int>(op)][algorithm]; }
};
// The name of algorithm index `algorithm` of `op` in AlgorithmCounts.
std::string_view counted_algorithm_name(CollectiveOp op, int algorithm);

// Times collectives on the engine.
class CollectiveTimer {
 public:
  virtual ~CollectiveTimer() = default;
  // Starts `collective` now; done.on_event(arg) fires at the simulated time it
  // completes (possibly now, for an empty collective).
  virtual void start(const Collective& collective, EventHandler& done, uint64_t arg) = 0;
  // Algorithms used so far.
  const AlgorithmCounts& algorithms() const { return algorithms_; }

 protected:
  AlgorithmCounts algorithms_;
};

std::unique_ptr<CollectiveTimer> make_collective_timer(NetworkModel model, Engine& engine,
                                                       const hw::ClusterSpec& cluster);

}  // namespace moesim::coll
