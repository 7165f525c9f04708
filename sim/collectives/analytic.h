#pragma once
// Closed-form collective times on a cluster, for one collective running alone:
// each resource (a GPU's NVLink port or mesh link, its NIC, a fat-tree leaf's
// uplinks) carries the bytes the algorithm puts on it, the slowest resource
// sets the transfer time, and latency terms are added per step. Fast, and
// blind to contention between concurrent collectives (FlowCollectives in
// flow.h sees it). Byte conventions as in collective.h.

#include <span>
#include <vector>

#include "hwmodels/cluster.h"
#include "sim/collectives/collective.h"

namespace moesim::coll {

double all_to_allv_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks,
                           std::span<const double> bytes, AllToAllAlgorithm algo);
double all_reduce_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks, double bytes);
double reduce_scatter_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks,
                              double bytes);
double all_gather_seconds(const hw::ClusterSpec& cluster, std::span<const int> ranks, double bytes);
double send_recv_seconds(const hw::ClusterSpec& cluster, int src, int dst, double bytes);

// Any collective: dispatches on its op to the functions above.
double collective_seconds(const hw::ClusterSpec& cluster, const Collective& collective);

// The per-rank bandwidth a ring over `ranks` sustains (bytes/s): the slowest
// hop, NVLink inside a node, one NIC per GPU across nodes, reduced by fat-tree
// oversubscription when the ring's traffic exceeds a leaf's uplinks.
double ring_bandwidth(const hw::ClusterSpec& cluster, std::span<const int> ranks);

// Times each collective with collective_seconds() once per key and completes
// it that long after it starts.
class AnalyticCollectives : public CollectiveTimer {
 public:
  AnalyticCollectives(Engine& engine, const hw::ClusterSpec& cluster);
  void start(const Collective& collective, EventHandler& done, uint64_t arg) override;
  // Distinct keys timed so far.
  size_t distinct_estimates() const { return estimated_; }

 private:
  Engine& engine_;
  const hw::ClusterSpec& cluster_;
  std::vector<SimTime> by_key_;  // SimTime::max(): not yet estimated
  size_t estimated_ = 0;
};

}  // namespace moesim::coll
