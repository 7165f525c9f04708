#include "sim/collectives/analytic.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "sim/collectives/link_loads.h"

namespace moesim::coll {
namespace {

using hw::ClusterSpec;

bool spans_nodes(const ClusterSpec& c, std::span<const int> ranks) {
  for (int r : ranks) {
    if (c.node_of(r) != c.node_of(ranks[0])) return true;
  }
  return false;
}

// Latency of one step of a ring or one point-to-point message: the wire
// (NVLink; three switch hops across nodes) and the per-message overhead.
double step_latency(const ClusterSpec& c, bool inter_node) {
  return c.node.intra_latency_s + c.switch_hops_s(inter_node, false) + c.fabric.message_overhead_s;
}

// Members of `ranks` on each node they use.
std::map<int, int> members_per_node(const ClusterSpec& c, std::span<const int> ranks) {
  std::map<int, int> per_node;
  for (int r : ranks) ++per_node[c.node_of(r)];
  return per_node;
}

// NVLink SHARP's efficiency relative to the ring's link rate on Hopper
// (NCCL: nvlsEfficiency 0.85, src/graph/tuning.cc; it predicts the ~480 GB/s
// busbw measured on 8 H100s, NVIDIA/nccl-tests #212).
constexpr double kNvlsEfficiency = 0.85;

// A ring, NVLS or tree reduction as resources: per-rank transfer time, the
// bottleneck and latency.
CollectiveEstimate ring_estimate(const ClusterSpec& c, std::span<const int> ranks, double bytes,
                                 double steps) {
  const int n = static_cast<int>(ranks.size());
  CollectiveEstimate e;
  e.reduce = ReduceAlgorithm::kRing;
  e.inter_node = spans_nodes(c, ranks);
  const double bw = ring_bandwidth(c, ranks);
  e.transfer_s = steps * bytes / n / bw;
  e.latency_s = steps * step_latency(c, e.inter_node);
  e.bottleneck = Bottleneck::kNvlink;
  if (e.inter_node && bw < c.node.achievable_intra_bytes_per_s()) {
    e.bottleneck = c.fabric.kind == hw::InterNodeFabric::kFatTree &&
                           bw < members_per_node(c, ranks).begin()->second *
                                    c.node.achievable_nic_bytes_per_s()
                       ? Bottleneck::kLeaf
                       : Bottleneck::kNic;
    e.network_s = e.transfer_s;
  }
  e.seconds = e.transfer_s + e.latency_s;
  return e;
}

// NVLS inside one node: an all-reduce moves (n+1)/n of the buffer through each
// GPU's port each way (multimem.ld_reduce of everyone's share, then
// multimem.st of the result: algbw = B n/(n+1), NVIDIA/nccl-tests #239);
// reduce-scatter and all-gather move the buffer once. One round of switch
// latency each way.
CollectiveEstimate nvls_estimate(const ClusterSpec& c, std::span<const int> ranks, double bytes,
                                 CollectiveOp op) {
  const int n = static_cast<int>(ranks.size());
  CollectiveEstimate e;
  e.reduce = ReduceAlgorithm::kNvls;
  const double volume = op == CollectiveOp::kAllReduce ? bytes * (n + 1.0) / n : bytes;
  e.transfer_s = volume / (kNvlsEfficiency * c.node.achievable_intra_bytes_per_s());
  e.latency_s = 2 * step_latency(c, false);
  e.bottleneck = Bottleneck::kNvlink;
  e.seconds = e.transfer_s + e.latency_s;
  return e;
}

// Tree all-reduce across nodes (NCCL's Tree: a chain through each node's
// GPUs, a double binary tree between nodes, reduce up then broadcast down).
// Each node sends and receives the whole buffer once each way over its
// members' NICs (one channel per NIC); NCCL rates the tree at half the ring's
// algorithm bandwidth per channel pair (tuning.cc: Tree algbw = busBw x 0.5),
// which this reproduces. Latency: the chain and log2(nodes) tree levels, up
// and down.
CollectiveEstimate tree_estimate(const ClusterSpec& c, std::span<const int> ranks, double bytes) {
  const auto per_node = members_per_node(c, ranks);
  int members = static_cast<int>(ranks.size());
  for (const auto& [node, k] : per_node) members = std::min(members, k);
  const int nodes = static_cast<int>(per_node.size());
  CollectiveEstimate e;
  e.reduce = ReduceAlgorithm::kTree;
  e.inter_node = true;
  const double nic = std::min(members, c.node.nics) * c.node.achievable_nic_bytes_per_s();
  const double nvlink = c.node.achievable_intra_bytes_per_s();
  const double network = 2 * bytes / nic, intra = 2 * bytes / nvlink;
  e.transfer_s = std::max(network, intra);
  e.network_s = network >= intra ? network : 0;
  e.bottleneck = network >= intra ? Bottleneck::kNic : Bottleneck::kNvlink;
  e.latency_s = 2 * ((members - 1) * step_latency(c, false) +
                     std::ceil(std::log2(std::max(2, nodes))) * step_latency(c, true));
  e.seconds = e.transfer_s + e.latency_s;
  return e;
}

CollectiveEstimate reduction_estimate(const ClusterSpec& c, const Collective& col,
                                      ReduceAlgorithm algo) {
  const int n = static_cast<int>(col.ranks.size());
  if (n <= 1 || col.bytes <= 0) return {};
  if (algo == ReduceAlgorithm::kNvls) return nvls_estimate(c, col.ranks, col.bytes, col.op);
  if (algo == ReduceAlgorithm::kTree) return tree_estimate(c, col.ranks, col.bytes);
  const double steps = col.op == CollectiveOp::kAllReduce ? 2.0 * (n - 1) : n - 1.0;
  return ring_estimate(c, col.ranks, col.bytes, steps);
}

CollectiveEstimate all_to_all_estimate(const ClusterSpec& c, const Collective& col) {
  const size_t n = col.ranks.size();
  CollectiveEstimate e;
  if (n <= 1) return e;
  LinkLoads loads(c);
  if (col.deduplicated() && col.algorithm == AllToAllAlgorithm::kHierarchical) {
    std::vector<double> rank_bytes, node_bytes;
    col.token_bytes(rank_bytes, node_bytes);
    loads.add_node_dedup(col.ranks, rank_bytes, node_bytes, col.transpose);
  } else {
    std::vector<double> bytes;
    col.byte_matrix(bytes);
    loads.add_all_to_all(col.ranks, bytes, col.algorithm);
  }
  return loads.estimate();
}

}  // namespace

std::string_view bottleneck_name(Bottleneck b) {
  switch (b) {
    case Bottleneck::kNone:
      return "none";
    case Bottleneck::kNvlink:
      return "nvlink";
    case Bottleneck::kCopyEngine:
      return "sm_copy";
    case Bottleneck::kNic:
      return "nic";
    case Bottleneck::kSpine:
      return "spine";
    case Bottleneck::kLeaf:
      return "leaf_uplink";
  }
  return "?";
}

double ring_bandwidth(const ClusterSpec& c, std::span<const int> ranks) {
  const double intra = c.node.achievable_intra_bytes_per_s();
  if (!spans_nodes(c, ranks)) return intra;
  // Multi-rail: a ring spanning nodes runs one channel per NIC its members
  // own, each channel leaving and entering every node through its own NIC
  // (NCCL graph search: one search channel per NIC, src/graph/search.cc).
  const auto per_node = members_per_node(c, ranks);
  int members = static_cast<int>(ranks.size());
  for (const auto& [node, k] : per_node) members = std::min(members, k);
  const int channels = std::max(1, std::min(members, c.node.nics));
  double bw = std::min(intra, channels * c.node.achievable_nic_bytes_per_s());
  if (c.fabric.kind == hw::InterNodeFabric::kFatTree) {
    // Every channel streams at the ring rate through its node's NICs; a
    // leaf's uplinks carry 1/oversubscription of its NIC bandwidth.
    std::map<int, int> channels_per_leaf;
    for (const auto& [node, k] : per_node) channels_per_leaf[c.leaf_of_node(node)] += channels;
    if (channels_per_leaf.size() > 1) {
      const double uplink = c.leaf_uplink_bytes_per_s();
      for (const auto& [leaf, ch] : channels_per_leaf) bw = std::min(bw, uplink * channels / ch);
    }
  }
  return bw;
}

ReduceAlgorithm choose_reduce_algorithm(const ClusterSpec& c, const Collective& col) {
  if (col.op == CollectiveOp::kSendRecv || col.op == CollectiveOp::kAllToAllV) {
    return ReduceAlgorithm::kRing;
  }
  ReduceAlgorithm best = ReduceAlgorithm::kRing;
  double best_s = reduction_estimate(c, col, best).seconds;
  auto consider = [&](ReduceAlgorithm a) {
    const double s = reduction_estimate(c, col, a).seconds;
    if (s < best_s) best = a, best_s = s;
  };
  // NVLS needs at least three ranks to gain (NVIDIA/nccl #1455: NVLS busbw
  // passes the ring's from 5 GPUs); the estimate decides.
  if (reduce_algorithm_offered(c, col, ReduceAlgorithm::kNvls) && col.ranks.size() > 2) {
    consider(ReduceAlgorithm::kNvls);
  }
  if (reduce_algorithm_offered(c, col, ReduceAlgorithm::kTree)) consider(ReduceAlgorithm::kTree);
  return best;
}

bool reduce_algorithm_offered(const ClusterSpec& c, const Collective& col, ReduceAlgorithm algo) {
  if (col.op == CollectiveOp::kSendRecv || col.op == CollectiveOp::kAllToAllV) {
    return algo == ReduceAlgorithm::kRing;
  }
  switch (algo) {
    case ReduceAlgorithm::kAuto:
    case ReduceAlgorithm::kRing:
      return true;
    case ReduceAlgorithm::kNvls:
      return c.node.nvls && !spans_nodes(c, col.ranks);
    case ReduceAlgorithm::kTree:
      return col.op == CollectiveOp::kAllReduce && spans_nodes(c, col.ranks);
  }
  return false;
}

ReduceAlgorithm resolve_reduce_algorithm(const ClusterSpec& c, const Collective& col) {
  if (col.reduce == ReduceAlgorithm::kAuto) return choose_reduce_algorithm(c, col);
  return reduce_algorithm_offered(c, col, col.reduce) ? col.reduce : ReduceAlgorithm::kRing;
}

CollectiveEstimate estimate_collective(const ClusterSpec& c, const Collective& col) {
  switch (col.op) {
    case CollectiveOp::kAllToAllV:
      return all_to_all_estimate(c, col);
    case CollectiveOp::kAllReduce:
    case CollectiveOp::kReduceScatter:
    case CollectiveOp::kAllGather: {
      return reduction_estimate(c, col, resolve_reduce_algorithm(c, col));
    }
    case CollectiveOp::kSendRecv: {
      CollectiveEstimate e;
      const int src = col.ranks[0], dst = col.ranks[1];
      if (src == dst || col.bytes <= 0) return e;
      e.inter_node = c.node_of(src) != c.node_of(dst);
      const double bw = e.inter_node ? c.node.achievable_nic_bytes_per_s()
                                     : c.node.achievable_intra_bytes_per_s();
      e.transfer_s = col.bytes / bw;
      e.network_s = e.inter_node ? e.transfer_s : 0;
      e.bottleneck = e.inter_node ? Bottleneck::kNic : Bottleneck::kNvlink;
      e.latency_s = step_latency(c, e.inter_node);
      e.seconds = e.transfer_s + e.latency_s;
      return e;
    }
  }
  return {};
}

double collective_seconds(const ClusterSpec& c, const Collective& col) {
  return estimate_collective(c, col).seconds;
}

namespace {
Collective reduction(CollectiveOp op, std::span<const int> ranks, double bytes,
                     ReduceAlgorithm algo) {
  Collective c;
  c.op = op;
  c.ranks = ranks;
  c.bytes = bytes;
  c.reduce = algo;
  return c;
}
}  // namespace

double all_reduce_seconds(const ClusterSpec& c, std::span<const int> ranks, double bytes,
                          ReduceAlgorithm algo) {
  return collective_seconds(c, reduction(CollectiveOp::kAllReduce, ranks, bytes, algo));
}
double reduce_scatter_seconds(const ClusterSpec& c, std::span<const int> ranks, double bytes,
                              ReduceAlgorithm algo) {
  return collective_seconds(c, reduction(CollectiveOp::kReduceScatter, ranks, bytes, algo));
}
double all_gather_seconds(const ClusterSpec& c, std::span<const int> ranks, double bytes,
                          ReduceAlgorithm algo) {
  return collective_seconds(c, reduction(CollectiveOp::kAllGather, ranks, bytes, algo));
}
double send_recv_seconds(const ClusterSpec& c, int src, int dst, double bytes) {
  const int pair[2] = {src, dst};
  return collective_seconds(
      c, reduction(CollectiveOp::kSendRecv, pair, bytes, ReduceAlgorithm::kRing));
}
double all_to_allv_seconds(const ClusterSpec& c, std::span<const int> ranks,
                           std::span<const double> bytes, AllToAllAlgorithm algo) {
  Collective col;
  col.op = CollectiveOp::kAllToAllV;
  col.ranks = ranks;
  col.matrix_bytes = bytes;
  col.algorithm = algo;
  return collective_seconds(c, col);
}

AnalyticCollectives::AnalyticCollectives(Engine& engine, const ClusterSpec& cluster)
    : engine_(engine),
      cluster_(cluster),
      nic_load_(static_cast<size_t>(cluster.nodes) * cluster.node.nics, 0),
      on_nic_(nic_load_.size()) {}

namespace {
// How a collective's duration stretches while `sharing` network collectives
// (itself included) cross one of its nodes: its network part slows, its
// NVLink part and latency do not.
double shared_seconds(const CollectiveEstimate& e, int sharing) {
  const double nvlink = e.network_s > 0 && e.transfer_s > e.network_s ? e.transfer_s : 0;
  return e.latency_s + std::max(nvlink, e.network_s * sharing);
}
}  // namespace

void AnalyticCollectives::start(const Collective& collective, EventHandler& done, uint64_t arg) {
  if (collective.key >= by_key_.size()) by_key_.resize(collective.key + 1, CollectiveEstimate{-1});
  CollectiveEstimate& e = by_key_[collective.key];
  if (e.seconds < 0) {
    e = estimate_collective(cluster_, collective);
    ++estimated_;
  }
  algorithms_.add(collective.op, collective.op == CollectiveOp::kAllToAllV
                                     ? static_cast<int>(collective.algorithm)
                                     : static_cast<int>(e.reduce));
  if (e.network_s <= 0) {
    engine_.schedule_after(SimTime::from_seconds(e.seconds), done, arg);
    return;
  }
  // A network collective shares its members' NICs with the others in flight.
  InFlight f;
  f.done = &done;
  f.arg = arg;
  f.updated = engine_.now();
  for (int r : collective.ranks) {
    f.nics.push_back(cluster_.node_of(r) * cluster_.node.nics + cluster_.rail_of(r));
  }
  std::sort(f.nics.begin(), f.nics.end());
  f.nics.erase(std::unique(f.nics.begin(), f.nics.end()), f.nics.end());
  f.estimate = e;
  const uint32_t slot = add_in_flight(std::move(f));
  reshare(in_flight_[slot].nics);
}

uint32_t AnalyticCollectives::add_in_flight(InFlight f) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    in_flight_[slot] = std::move(f);
  } else {
    slot = static_cast<uint32_t>(in_flight_.size());
    in_flight_.push_back(std::move(f));
  }
  for (int nic : in_flight_[slot].nics) {
    ++nic_load_[nic];
    on_nic_[nic].push_back(slot);
  }
  return slot;
}

// Progress since the last change, at the duration it had.
void AnalyticCollectives::advance(InFlight& f) {
  const double elapsed = (engine_.now() - f.updated).seconds();
  f.remaining = std::max(0.0, f.remaining - elapsed / f.duration_s);
  f.updated = engine_.now();
}

// Re-times every collective in flight on `nics` after their load changed.
void AnalyticCollectives::reshare(std::span<const int> nics) {
  std::vector<uint32_t> touched;
  for (int nic : nics) touched.insert(touched.end(), on_nic_[nic].begin(), on_nic_[nic].end());
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (uint32_t slot : touched) {
    InFlight& f = in_flight_[slot];
    if (f.duration_s > 0) advance(f);
    int sharing = 1;
    for (int nic : f.nics) sharing = std::max(sharing, nic_load_[nic]);
    const double duration = shared_seconds(f.estimate, sharing);
    if (duration == f.duration_s && f.completion.valid()) continue;
    f.duration_s = duration;
    const SimTime at = engine_.now() + SimTime::from_seconds(f.remaining * duration);
    f.completion = f.completion.valid() ? engine_.reschedule(f.completion, at)
                                        : engine_.schedule_at(at, *this, slot);
  }
}

void AnalyticCollectives::on_event(uint64_t slot) {
  InFlight& f = in_flight_[slot];
  EventHandler* done = f.done;
  const uint64_t arg = f.arg;
  std::vector<int> nics = std::move(f.nics);
  f = InFlight{};
  free_slots_.push_back(static_cast<uint32_t>(slot));
  for (int nic : nics) {
    --nic_load_[nic];
    auto& list = on_nic_[nic];
    list.erase(std::find(list.begin(), list.end(), static_cast<uint32_t>(slot)));
  }
  reshare(nics);
  done->on_event(arg);
}

}  // namespace moesim::coll
