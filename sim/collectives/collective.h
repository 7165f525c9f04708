#pragma once
// Collective communication as the rest of the simulator sees it: what a
// collective is (CollectiveOp, its ranks and bytes), how it may be carried out
// (AllToAllAlgorithm), and the one interface that times it (CollectiveTimer).
//
// Two implementations live beside this header: AnalyticCollectives
// (analytic.h: each collective timed alone from the bytes on its bottleneck
// links, closed form, no contention) and FlowCollectives (flow.h: every
// transfer played on the flow-level network, sharing links with whatever else
// is in flight). make_collective_timer() picks one by NetworkModel.
//
// Byte conventions follow NCCL-tests: `bytes` of all-reduce, reduce-scatter
// and all-gather is the full buffer per rank; send/recv moves `bytes` from
// ranks[0] to ranks[1]; all-to-allv moves an n x n byte matrix (row = sender,
// in `ranks` order; the diagonal stays local).

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

enum class AllToAllAlgorithm : uint8_t {
  kDirect,        // every pair exchanges directly, each GPU on its own NIC
  kHierarchical,  // inter-node bytes forwarded over NVLink to the GPU on the
                  // destination's rail, so all of a node's NICs share the load
                  // (NCCL's PXN, Tutel, DeepEP), then delivered inside the node
};

// How collectives are timed. The scenario's "auto" is resolved before this.
enum class NetworkModel : uint8_t { kAnalytic, kFlow };

std::string_view op_name(CollectiveOp op);                // "all_to_all", "all_reduce", ...
std::string_view algorithm_name(AllToAllAlgorithm algo);  // "direct", "hierarchical"
std::string_view network_model_name(NetworkModel model);  // "analytic", "flow"
std::optional<AllToAllAlgorithm> algorithm_from_name(std::string_view name);

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
  // All-to-allv: the n x n byte matrix itself (row = sender, in `ranks`
  // order), or, when it is empty, the n x n token-copy matrix, the bytes each
  // copy carries, and which part of it moves: the transpose (a combine sends
  // the dispatch's copies back) and a fraction (one chunk).
  std::span<const double> matrix_bytes;
  std::span<const int64_t> token_copies;
  double bytes_per_copy = 0;
  bool transpose = false;
  double fraction = 1;
  AllToAllAlgorithm algorithm = AllToAllAlgorithm::kHierarchical;
  // Requests with the same key are the same collective (same op, ranks,
  // bytes, matrix, algorithm): implementations may time a key once.
  uint64_t key = 0;

  // All-to-allv: fills `out` with the n x n byte matrix (row = sender).
  void byte_matrix(std::vector<double>& out) const;
};

// Times collectives on the engine.
class CollectiveTimer {
 public:
  virtual ~CollectiveTimer() = default;
  // Starts `collective` now; done.on_event(arg) fires at the simulated time it
  // completes (possibly now, for an empty collective).
  virtual void start(const Collective& collective, EventHandler& done, uint64_t arg) = 0;
};

std::unique_ptr<CollectiveTimer> make_collective_timer(NetworkModel model, Engine& engine,
                                                       const hw::ClusterSpec& cluster);

}  // namespace moesim::coll
