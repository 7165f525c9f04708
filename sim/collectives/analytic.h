#pragma once
// Closed-form collective times on a cluster: each resource (a GPU's NVLink
// port or mesh link, its SM copy engine for all-to-all kernels, a node's NICs,
// a rail's spine uplinks, a fat-tree leaf's uplinks) carries the bytes the
// algorithm puts on it, the slowest resource sets the transfer time, and
// latency terms are added per step. Byte conventions as in collective.h.
//
// AnalyticCollectives times each collective this way when it starts. It sees
// contention in one place, the one that matters most at scale: collectives in
// flight at once share NICs (a data-parallel reduction and an expert
// all-to-all on the same rails slow each other down): while k of them use one
// of its members' NICs, a collective's network part runs at 1/k of its rate
// (processor sharing, re-timed whenever one starts or ends). NVLink is not
// shared here (FlowCollectives in flow.h shares every link).

#include <span>
#include <string_view>
#include <vector>

#include "hwmodels/cluster.h"
#include "sim/collectives/collective.h"

namespace moesim::coll {

// The kind of resource that sets a collective's transfer time.
enum class Bottleneck : uint8_t { kNone, kNvlink, kCopyEngine, kNic, kSpine, kLeaf };
std::string_view bottleneck_name(Bottleneck b);  // "none", "nvlink", "sm_copy", "nic", ...

struct CollectiveEstimate {
  double seconds = 0;
  double transfer_s = 0;  // bytes on the bottleneck resource / its rate
  double latency_s = 0;
  double network_s = 0;  // the part of transfer_s bound by NICs or the fabric (0 if none)
  // All-to-alls: each rank's own busiest resource (NVLink port, NIC, its
  // rail's or leaf's uplinks), averaged over the ranks, plus latency; what a
  // benchmark averaging every rank's kernel time reports (DeepEP's README).
  double rank_mean_seconds = 0;
  Bottleneck bottleneck = Bottleneck::kNone;
  ReduceAlgorithm reduce = ReduceAlgorithm::kRing;  // reductions: the algorithm estimated
  bool inter_node = false;
};

// One collective alone. Reductions use collective.reduce, kAuto resolved by
// choose_reduce_algorithm().
CollectiveEstimate estimate_collective(const hw::ClusterSpec& cluster,
                                       const Collective& collective);
double collective_seconds(const hw::ClusterSpec& cluster, const Collective& collective);

// The algorithm NCCL's tuner would run: among those the cluster supports for
// this op and group (ring always; NVLS inside one NVSwitch node with
// node.nvls; tree for all-reduce across nodes), the one with the least
// estimated time (NCCL: ncclTopoGetAlgoTime, src/graph/tuning.cc, min over
// algorithms in topoGetAlgoInfo, src/enqueue.cc).
ReduceAlgorithm choose_reduce_algorithm(const hw::ClusterSpec& cluster,
                                        const Collective& collective);

// Whether NCCL offers `algo` for this reduction's op and group: the ring
// always; NVLS inside one NVSwitch node with node.nvls; tree for all-reduce
// across nodes (NCCL's tree runs all-reduce only).
bool reduce_algorithm_offered(const hw::ClusterSpec& cluster, const Collective& collective,
                              ReduceAlgorithm algo);

// The algorithm a reduction runs: collective.reduce where it is offered
// (kAuto: choose_reduce_algorithm), the ring where a forced one is not, so
// that one forced algorithm can apply to a step's every reduction.
ReduceAlgorithm resolve_reduce_algorithm(const hw::ClusterSpec& cluster,
                                         const Collective& collective);

// The per-rank bandwidth a ring over `ranks` sustains (bytes/s): NVLink inside
// a node; across nodes one channel per NIC (NCCL's multi-rail rings), so k
// members per node move k NICs' worth, capped by NVLink; reduced by fat-tree
// oversubscription when the ring's traffic exceeds a leaf's uplinks.
double ring_bandwidth(const hw::ClusterSpec& cluster, std::span<const int> ranks);

// Plain-argument forms, for tests and the CLI.
double all_to_allv_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks,
                           std::span<const double> bytes, AllToAllAlgorithm algo);
double all_reduce_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks, double bytes,
                          ReduceAlgorithm algo = ReduceAlgorithm::kRing);
double reduce_scatter_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks,
                              double bytes, ReduceAlgorithm algo = ReduceAlgorithm::kRing);
double all_gather_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks, double bytes,
                          ReduceAlgorithm algo = ReduceAlgorithm::kRing);
double send_recv_seconds(const hw::ClusterSpec& cluster, int src, int dst, double bytes);

class AnalyticCollectives : public CollectiveTimer, private EventHandler {
 public:
  AnalyticCollectives(Engine& engine, const hw::ClusterSpec& cluster);
  void start(const Collective& collective, EventHandler& done, uint64_t arg) override;
  // Distinct keys estimated so far.
  size_t distinct_estimates() const { return estimated_; }

 private:
  // A collective crossing the network, sharing its members' NICs.
  struct InFlight {
    EventHandler* done = nullptr;
    uint64_t arg = 0;
    double remaining = 1;   // fraction of the collective still to go
    double duration_s = 0;  // its whole duration at the current sharing
    SimTime updated;        // when `remaining` was last brought up to date
    EventId completion;
    std::vector<int> nics;  // its members' NICs (node x rail)
    CollectiveEstimate estimate;
  };
  void on_event(uint64_t slot) override;
  void advance(InFlight& f);
  void reshare(std::span<const int> nics);
  uint32_t add_in_flight(InFlight f);

  Engine& engine_;
  const hw::ClusterSpec& cluster_;
  std::vector<CollectiveEstimate> by_key_;  // seconds < 0: not yet estimated
  size_t estimated_ = 0;
  std::vector<InFlight> in_flight_;  // slots; done == nullptr: free
  std::vector<uint32_t> free_slots_;
  std::vector<int> nic_load_;                  // network collectives using each NIC
  std::vector<std::vector<uint32_t>> on_nic_;  // in-flight slots per NIC
};

}  // namespace moesim::coll
