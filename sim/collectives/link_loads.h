#pragma once
// The closed-form model of all-to-all traffic: which resources each byte of an
// all-to-allv crosses under each algorithm, the time each resource needs at
// its achievable rate, and the slowest one (AnalyticCollectives' estimate).
// FlowCollectives plays the same paths as flows (flow.cpp).

#include <span>
#include <vector>

#include "hwmodels/cluster.h"
#include "sim/collectives/analytic.h"
#include "sim/collectives/collective.h"

namespace moesim::coll {

class LinkLoads {
 public:
  explicit LinkLoads(const hw::ClusterSpec& cluster);

  // A byte matrix (row = sender, in `ranks` order) sent with `algo`: direct
  // pairs, NCCL's PXN (kHierarchical), or DeepEP's low-latency messages. A
  // rank's bytes to itself never leave its GPU.
  void add_all_to_all(std::span<const int> ranks, std::span<const double> bytes,
                      AllToAllAlgorithm algo);
  // DeepEP's normal kernels: `rank_bytes` each sender sends each rank once,
  // `node_bytes` each remote node once (at its first rank there), in the
  // dispatch direction; `reverse`: the combine, the same paths backwards.
  void add_node_dedup(std::span<const int> ranks, std::span<const double> rank_bytes,
                      std::span<const double> node_bytes, bool reverse);

  // The slowest resource's time plus latency; rank_mean_seconds, each rank's
  // own busiest resource averaged over the ranks. Low-latency messages too:
  // in DeepEP's internode_ll.cu a warp either posts a copy as a non-blocking
  // RDMA put (nvshmemi_ibgda_put_nbi_warp) or copies it to a same-node peer
  // with ld/st, and at 128 tokens per rank each SM sends about one token, so
  // the NVLink copies run while the NICs drain the puts; the kernel's fixed
  // time is the cluster's low_latency_fixed_s.
  CollectiveEstimate estimate() const;

 private:
  enum class Link { kNvlOut, kNvlIn, kNicOut, kNicIn, kSpineUp, kSpineDown, kLeafUp, kLeafDown };
  // Seconds of load added to one resource.
  void load(Link link, int index, double seconds);
  void nvlink(int src_gpu, int dst_gpu, double bytes, double rate);
  void network(int src_node, int src_rail, int dst_node, int dst_rail, double bytes);
  void add_members(std::span<const int> ranks);
  // Seconds on the busiest resource GPU `rank` sends or receives through.
  double rank_seconds(int rank) const;

  const hw::ClusterSpec& cluster_;
  std::vector<double> nvl_out_, nvl_in_;       // per GPU (mesh: per ordered pair of a node)
  std::vector<double> nic_out_, nic_in_;       // per node x rail
  std::vector<double> spine_up_, spine_down_;  // per rail
  std::vector<double> leaf_up_, leaf_down_;    // per leaf
  bool inter_node_ = false, cross_rail_ = false, two_hop_ = false, low_latency_ = false;
  std::vector<int> members_;  // the ranks of the collective(s) added
};

}  // namespace moesim::coll
