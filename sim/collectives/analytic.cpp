#include "sim/collectives/analytic.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

namespace moesim::coll {
namespace {

using hw::ClusterSpec;

bool spans_nodes(const ClusterSpec& c, std::span<const int> ranks) {
  for (int r : ranks) {
    if (c.node_of(r) != c.node_of(ranks[0])) return true;
  }
  return false;
}

// Latency of one step of a ring or one point-to-point message.
double step_latency(const ClusterSpec& c, bool inter_node) {
  const double wire =
      inter_node ? c.node.intra_latency_s + 3 * c.fabric.hop_latency_s : c.node.intra_latency_s;
  return wire + c.fabric.message_overhead_s;
}

// Links are timed at their achievable rate (datasheet rate x efficiency).
double intra_link_bandwidth(const ClusterSpec& c) {
  return c.node.achievable_intra_bytes_per_s();
}
double nic_bandwidth(const ClusterSpec& c) {
  return c.node.achievable_nic_bytes_per_s();
}

}  // namespace

double ring_bandwidth(const ClusterSpec& c, std::span<const int> ranks) {
  double bw = intra_link_bandwidth(c);
  if (!spans_nodes(c, ranks)) return bw;
  bw = std::min(bw, nic_bandwidth(c));
  if (c.fabric.kind == hw::InterNodeFabric::kFatTree) {
    // Every member's NIC streams at the ring rate; a leaf's uplinks carry
    // 1/oversubscription of its NIC bandwidth.
    std::map<int, int> per_leaf;
    for (int r : ranks) ++per_leaf[c.leaf_of_node(c.node_of(r))];
    if (per_leaf.size() > 1) {
      const double uplink = c.leaf_uplink_bytes_per_s();
      for (const auto& [leaf, members] : per_leaf) bw = std::min(bw, uplink / members);
    }
  }
  return bw;
}

double all_reduce_seconds(const ClusterSpec& c, std::span<const int> ranks, double bytes) {
  const int n = static_cast<int>(ranks.size());
  if (n <= 1 || bytes <= 0) return 0;
  return 2.0 * (n - 1) / n * bytes / ring_bandwidth(c, ranks) +
         2.0 * (n - 1) * step_latency(c, spans_nodes(c, ranks));
}

double reduce_scatter_seconds(const ClusterSpec& c, std::span<const int> ranks, double bytes) {
  const int n = static_cast<int>(ranks.size());
  if (n <= 1 || bytes <= 0) return 0;
  return (n - 1.0) / n * bytes / ring_bandwidth(c, ranks) +
         (n - 1.0) * step_latency(c, spans_nodes(c, ranks));
}

double all_gather_seconds(const ClusterSpec& c, std::span<const int> ranks, double bytes) {
  return reduce_scatter_seconds(c, ranks, bytes);
}

double send_recv_seconds(const ClusterSpec& c, int src, int dst, double bytes) {
  if (src == dst || bytes <= 0) return 0;
  const bool inter = c.node_of(src) != c.node_of(dst);
  const double bw = inter ? nic_bandwidth(c) : intra_link_bandwidth(c);
  return bytes / bw + step_latency(c, inter);
}

double all_to_allv_seconds(const ClusterSpec& c, std::span<const int> ranks,
                           std::span<const double> bytes, AllToAllAlgorithm algo) {
  const size_t n = ranks.size();
  if (n <= 1) return 0;
  std::vector<double> intra_out(n, 0), intra_in(n, 0), inter_out(n, 0), inter_in(n, 0);
  std::map<int, double> node_out, node_in, leaf_out, leaf_in;
  std::map<int, int> node_members;
  double mesh_worst_pair = 0;
  bool any_inter = false, any = false;
  for (size_t i = 0; i < n; ++i) ++node_members[c.node_of(ranks[i])];
  for (size_t i = 0; i < n; ++i) {
    const int ni = c.node_of(ranks[i]);
    for (size_t j = 0; j < n; ++j) {
      const double b = bytes[i * n + j];
      if (i == j || b <= 0) continue;
      any = true;
      const int nj = c.node_of(ranks[j]);
      if (ni == nj) {
        intra_out[i] += b;
        intra_in[j] += b;
        mesh_worst_pair = std::max(mesh_worst_pair, b);
        continue;
      }
      any_inter = true;
      inter_out[i] += b;
      inter_in[j] += b;
      node_out[ni] += b;
      node_in[nj] += b;
      const int li = c.leaf_of_node(ni), lj = c.leaf_of_node(nj);
      if (li != lj) {
        leaf_out[li] += b;
        leaf_in[lj] += b;
      }
    }
  }
  if (!any) return 0;
  const double intra_bw = intra_link_bandwidth(c);
  double nvlink = 0, nic = 0, leaf = 0;
  if (algo == AllToAllAlgorithm::kDirect) {
    for (size_t i = 0; i < n; ++i) {
      nvlink = std::max({nvlink, intra_out[i] / intra_bw, intra_in[i] / intra_bw});
      nic = std::max({nic, inter_out[i] / nic_bandwidth(c), inter_in[i] / nic_bandwidth(c)});
    }
  } else {
    // Inter-node bytes spread over all the node's member NICs; each crosses
    // NVLink once before (to the rail GPU) and once after (to its
    // destination) with probability (k-1)/k.
    for (size_t i = 0; i < n; ++i) {
      const int node = c.node_of(ranks[i]);
      const double k = node_members[node];
      const double forward = (k - 1) / k;
      const double out = intra_out[i] + inter_out[i] * forward + node_in[node] / k * forward;
      const double in = intra_in[i] + inter_in[i] * forward + node_out[node] / k * forward;
      nvlink = std::max({nvlink, out / intra_bw, in / intra_bw});
    }
    for (const auto& [node, members] : node_members) {
      const double cap = members * nic_bandwidth(c);
      nic = std::max({nic, node_out[node] / cap, node_in[node] / cap});
    }
  }
  if (c.node.intra == hw::IntraNodeFabric::kMesh && algo == AllToAllAlgorithm::kDirect) {
    // One link per pair: the largest pair sets the time.
    nvlink = mesh_worst_pair / intra_bw;
  }
  if (c.fabric.kind == hw::InterNodeFabric::kFatTree) {
    const double uplink = c.leaf_uplink_bytes_per_s();
    for (const auto& [l, b] : leaf_out) leaf = std::max(leaf, b / uplink);
    for (const auto& [l, b] : leaf_in) leaf = std::max(leaf, b / uplink);
  }
  // Messages are posted to all peers at once; their software overhead
  // overlaps except for a logarithmic tail. Hierarchical adds one NVLink hop
  // on each side.
  double latency = step_latency(c, any_inter) + c.fabric.message_overhead_s * std::log2(n);
  if (algo == AllToAllAlgorithm::kHierarchical && any_inter) latency += 2 * c.node.intra_latency_s;
  return std::max({nvlink, nic, leaf}) + latency;
}

double collective_seconds(const ClusterSpec& c, const Collective& collective) {
  switch (collective.op) {
    case CollectiveOp::kAllToAllV: {
      std::vector<double> bytes;
      collective.byte_matrix(bytes);
      return all_to_allv_seconds(c, collective.ranks, bytes, collective.algorithm);
    }
    case CollectiveOp::kAllReduce:
      return all_reduce_seconds(c, collective.ranks, collective.bytes);
    case CollectiveOp::kReduceScatter:
      return reduce_scatter_seconds(c, collective.ranks, collective.bytes);
    case CollectiveOp::kAllGather:
      return all_gather_seconds(c, collective.ranks, collective.bytes);
    case CollectiveOp::kSendRecv:
      return send_recv_seconds(c, collective.ranks[0], collective.ranks[1], collective.bytes);
  }
  return 0;
}

AnalyticCollectives::AnalyticCollectives(Engine& engine, const ClusterSpec& cluster)
    : engine_(engine), cluster_(cluster) {}

void AnalyticCollectives::start(const Collective& collective, EventHandler& done, uint64_t arg) {
  if (collective.key >= by_key_.size()) by_key_.resize(collective.key + 1, SimTime::max());
  SimTime& duration = by_key_[collective.key];
  if (duration == SimTime::max()) {
    duration = SimTime::from_seconds(collective_seconds(cluster_, collective));
    ++estimated_;
  }
  engine_.schedule_after(duration, done, arg);
}

}  // namespace moesim::coll
