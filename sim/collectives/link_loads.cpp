#include "sim/collectives/link_loads.h"

#include <algorithm>
#include <cmath>

namespace moesim::coll {

LinkLoads::LinkLoads(const hw::ClusterSpec& c) : cluster_(c) {
  const size_t gpus = static_cast<size_t>(c.gpu_count());
  const size_t per = static_cast<size_t>(c.node.gpus_per_node);
  if (c.node.intra == hw::IntraNodeFabric::kMesh) {
    nvl_out_.assign(static_cast<size_t>(c.nodes) * per * per, 0);
  } else {
    nvl_out_.assign(gpus, 0);
    nvl_in_.assign(gpus, 0);
  }
  nic_out_.assign(static_cast<size_t>(c.nodes) * c.node.nics, 0);
  nic_in_.assign(nic_out_.size(), 0);
  if (c.fabric.kind == hw::InterNodeFabric::kFatTree) {
    const int leaves = (c.nodes + c.fabric.nodes_per_leaf - 1) / c.fabric.nodes_per_leaf;
    leaf_up_.assign(leaves, 0);
    leaf_down_.assign(leaves, 0);
  } else {
    spine_up_.assign(c.node.nics, 0);
    spine_down_.assign(c.node.nics, 0);
  }
}

void LinkLoads::load(Link link, int index, double seconds) {
  switch (link) {
    case Link::kNvlOut:
      nvl_out_[index] += seconds;
      return;
    case Link::kNvlIn:
      nvl_in_[index] += seconds;
      return;
    case Link::kNicOut:
      nic_out_[index] += seconds;
      return;
    case Link::kNicIn:
      nic_in_[index] += seconds;
      return;
    case Link::kSpineUp:
      spine_up_[index] += seconds;
      return;
    case Link::kSpineDown:
      spine_down_[index] += seconds;
      return;
    case Link::kLeafUp:
      leaf_up_[index] += seconds;
      return;
    case Link::kLeafDown:
      leaf_down_[index] += seconds;
      return;
  }
}

// Bytes between two GPUs of one node at `rate` (the ring's NVLink rate for
// NCCL's transfers, a lower one for all-to-all kernels copying with few SMs).
void LinkLoads::nvlink(int src, int dst, double bytes, double rate) {
  if (src == dst || bytes <= 0) return;
  const double s = bytes / rate;
  if (nvl_in_.empty()) {  // mesh: one link per ordered pair
    const int per = cluster_.node.gpus_per_node;
    load(Link::kNvlOut, (cluster_.node_of(src) * per + src % per) * per + dst % per, s);
    return;
  }
  load(Link::kNvlOut, src, s);
  load(Link::kNvlIn, dst, s);
}

// Bytes from NIC src_rail of src_node to NIC dst_rail of dst_node: different
// rails meet through the spine (rail-optimized), different leaves through
// the leaf uplinks (fat tree).
void LinkLoads::network(int src_node, int src_rail, int dst_node, int dst_rail, double bytes) {
  if (bytes <= 0) return;
  inter_node_ = true;
  const int nics = cluster_.node.nics;
  const double nic = cluster_.node.achievable_nic_bytes_per_s();
  load(Link::kNicOut, src_node * nics + src_rail, bytes / nic);
  load(Link::kNicIn, dst_node * nics + dst_rail, bytes / nic);
  if (!leaf_up_.empty()) {
    const int la = cluster_.leaf_of_node(src_node), lb = cluster_.leaf_of_node(dst_node);
    if (la != lb) {
      const double uplink = cluster_.leaf_uplink_bytes_per_s();
      load(Link::kLeafUp, la, bytes / uplink);
      load(Link::kLeafDown, lb, bytes / uplink);
    }
  } else if (src_rail != dst_rail) {
    cross_rail_ = true;
    const double uplink = cluster_.rail_uplink_bytes_per_s();
    load(Link::kSpineUp, src_rail, bytes / uplink);
    load(Link::kSpineDown, dst_rail, bytes / uplink);
  }
}

void LinkLoads::add_members(std::span<const int> ranks) {
  if (ranks.size() > members_.size()) members_.assign(ranks.begin(), ranks.end());
}

void LinkLoads::add_all_to_all(std::span<const int> ranks, std::span<const double> bytes,
                               AllToAllAlgorithm algo) {
  const size_t n = ranks.size();
  add_members(ranks);
  const hw::ClusterSpec& c = cluster_;
  const int per = c.node.gpus_per_node;
  const double ring_rate = c.node.achievable_intra_bytes_per_s();
  const bool low_latency = algo == AllToAllAlgorithm::kLowLatency;
  const bool ll_nvlink = low_latency && c.node.low_latency_nvlink;
  two_hop_ = two_hop_ || algo == AllToAllAlgorithm::kHierarchical;
  low_latency_ = low_latency_ || low_latency;
  for (size_t i = 0; i < n; ++i) {
    const int s = ranks[i], ns = c.node_of(s);
    for (size_t j = 0; j < n; ++j) {
      const double b = bytes[i * n + j];
      const int d = ranks[j], nd = c.node_of(d);
      // Self copies stay on the GPU: DeepEP's low-latency kernels copy them
      // with the warp's ld/st even in the pure-RDMA variant (internode_ll.cu
      // at e255d57, before NVLink was allowed: `if (dst_rank != rank)` put,
      // else UNROLLED_WARP_COPY, in dispatch and combine alike).
      if (b <= 0 || i == j) continue;
      if (low_latency) {
        // Every copy is its own message: same-node copies over NVLink when
        // allowed, every other one through the NICs of the two GPUs.
        if (ns == nd && ll_nvlink) {
          nvlink(s, d, b, c.node.achievable_low_latency_intra_bytes_per_s());
        } else {
          network(ns, c.rail_of(s), nd, c.rail_of(d), b);
        }
        continue;
      }
      if (ns == nd) {
        nvlink(s, d, b, ring_rate);
      } else if (algo == AllToAllAlgorithm::kDirect) {
        network(ns, c.rail_of(s), nd, c.rail_of(d), b);
      } else {
        // PXN: over NVLink to the GPU on the destination's rail, across on
        // that rail, then to the destination if its NIC is shared.
        const int rail = c.rail_of(d);
        const int rail_gpu = rail * per / c.node.nics;
        nvlink(s, ns * per + rail_gpu, b, ring_rate);
        network(ns, rail, nd, rail, b);
        nvlink(nd * per + rail_gpu, d, b, ring_rate);
      }
    }
  }
}

void LinkLoads::add_node_dedup(std::span<const int> ranks, std::span<const double> rank_bytes,
                               std::span<const double> node_bytes, bool reverse) {
  const size_t n = ranks.size();
  add_members(ranks);
  two_hop_ = true;
  const hw::ClusterSpec& c = cluster_;
  const int per = c.node.gpus_per_node;
  const double rate = c.node.achievable_a2a_intra_bytes_per_s();
  // The combine crosses the same links in the other direction.
  auto nv = [&](int a, int b, double bytes) {
    reverse ? nvlink(b, a, bytes, rate) : nvlink(a, b, bytes, rate);
  };
  auto net = [&](int na, int ra, int nb, int rb, double bytes) {
    reverse ? network(nb, rb, na, ra, bytes) : network(na, ra, nb, rb, bytes);
  };
  for (size_t i = 0; i < n; ++i) {
    const int s = ranks[i], ns = c.node_of(s), rail = c.rail_of(s);
    for (size_t j = 0; j < n; ++j) {
      const int d = ranks[j], nd = c.node_of(d);
      if (ns == nd) {
        // Inside the sender's node: once per destination rank over NVLink.
        if (i != j) nv(s, d, rank_bytes[i * n + j]);
        continue;
      }
      // Once per node over RDMA, to the GPU of the sender's rail there (the
      // node's first destination rank holds the count)...
      net(ns, rail, nd, rail, node_bytes[i * n + j]);
      // ... which forwards to every destination rank of its node over NVLink.
      const int forwarder = nd * per + rail * per / c.node.nics;
      nv(forwarder, d, rank_bytes[i * n + j]);
    }
  }
}

CollectiveEstimate LinkLoads::estimate() const {
  CollectiveEstimate e;
  auto worst = [](const std::vector<double>& v) {
    return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
  };
  const double nvl = std::max(worst(nvl_out_), worst(nvl_in_));
  const double nic = std::max(worst(nic_out_), worst(nic_in_));
  const double spine = std::max(worst(spine_up_), worst(spine_down_));
  const double leaf = std::max(worst(leaf_up_), worst(leaf_down_));
  const double network = std::max({nic, spine, leaf});
  if (nvl <= 0 && network <= 0) return e;
  e.inter_node = inter_node_;
  e.network_s = network;
  e.transfer_s = std::max(nvl, network);
  e.bottleneck = nvl >= network                 ? Bottleneck::kNvlink
                 : nic >= std::max(spine, leaf) ? Bottleneck::kNic
                 : spine >= leaf                ? Bottleneck::kSpine
                                                : Bottleneck::kLeaf;
  const hw::ClusterSpec& c = cluster_;
  if (low_latency_ && c.node.low_latency_kernel_s > 0) {
    // DeepEP's low-latency kernels: what a kernel spends beyond moving its
    // bytes, calibrated as one fixed time (the preset's source says on which
    // rows), and the switch hops.
    e.latency_s = c.low_latency_fixed_s(inter_node_, cross_rail_);
  } else {
    // Messages to all peers are posted at once: one message's latency, a
    // logarithmic tail of software overhead, a forwarding hop where there is
    // one, and two more switch hops across the spine.
    const int ranks = std::max(2, static_cast<int>(members_.size()));
    e.latency_s = c.node.intra_latency_s + c.fabric.message_overhead_s +
                  c.fabric.message_overhead_s * std::log2(ranks) +
                  c.switch_hops_s(inter_node_, cross_rail_);
    if (two_hop_ && inter_node_) e.latency_s += 2 * c.node.intra_latency_s;
  }
  e.seconds = e.transfer_s + e.latency_s;
  double rank_sum = 0;
  for (int rank : members_) rank_sum += rank_seconds(rank);
  e.rank_mean_seconds = rank_sum / static_cast<double>(members_.size()) + e.latency_s;
  return e;
}

double LinkLoads::rank_seconds(int rank) const {
  const hw::ClusterSpec& c = cluster_;
  const int per = c.node.gpus_per_node, node = c.node_of(rank), rail = c.rail_of(rank);
  double s = 0;
  if (nvl_in_.empty()) {  // mesh: the links out of this GPU and into it
    const size_t base = static_cast<size_t>(node) * per, local = rank % per;
    for (size_t k = 0; k < static_cast<size_t>(per); ++k) {
      s = std::max({s, nvl_out_[(base + local) * per + k], nvl_out_[(base + k) * per + local]});
    }
  } else {
    s = std::max(nvl_out_[rank], nvl_in_[rank]);
  }
  const size_t nic = static_cast<size_t>(node) * c.node.nics + rail;
  s = std::max({s, nic_out_[nic], nic_in_[nic]});
  if (!spine_up_.empty()) s = std::max({s, spine_up_[rail], spine_down_[rail]});
  if (!leaf_up_.empty()) {
    const int leaf = c.leaf_of_node(node);
    s = std::max({s, leaf_up_[leaf], leaf_down_[leaf]});
  }
  return s;
}

}  // namespace moesim::coll
