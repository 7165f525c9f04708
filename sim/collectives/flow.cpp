#include "sim/collectives/flow.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <stdexcept>

#include "sim/collectives/analytic.h"

namespace moesim::coll {
namespace {

// NVLink SHARP's efficiency relative to the ring's link rate (NCCL's
// nvlsEfficiency for Hopper, src/graph/tuning.cc); as in analytic.cpp.
constexpr double kNvlsEfficiency = 0.85;

// The nodes a group spans, in order of first appearance, with their members
// in group order.
std::vector<std::vector<int>> members_by_node(const hw::ClusterSpec& c,
                                              std::span<const int> ranks) {
  std::vector<std::vector<int>> nodes;
  std::map<int, size_t> index;
  for (int r : ranks) {
    auto [it, fresh] = index.emplace(c.node_of(r), nodes.size());
    if (fresh) nodes.emplace_back();
    nodes[it->second].push_back(r);
  }
  return nodes;
}

}  // namespace

FlowCollectives::FlowCollectives(Engine& engine, const hw::ClusterSpec& cluster)
    : engine_(engine), network_(engine, cluster) {}

uint32_t FlowCollectives::add_running(EventHandler& done, uint64_t arg) {
  running_.push_back(Running{&done, arg, {}, 0, 0, {}, 0});
  return static_cast<uint32_t>(running_.size() - 1);
}

FlowCollectives::PendingFlow FlowCollectives::transfer(int src, int dst, double bytes) const {
  const int per = network_.cluster().node.gpus_per_node;
  return {network_.gpu_path(src, dst, false), bytes,
          network_.message_latency(src / per != dst / per)};
}

void FlowCollectives::start(const Collective& c, EventHandler& done, uint64_t arg) {
  const int n = static_cast<int>(c.ranks.size());
  switch (c.op) {
    case CollectiveOp::kAllToAllV:
    case CollectiveOp::kSendRecv: {
      const uint32_t r = add_running(done, arg);
      if (c.op == CollectiveOp::kSendRecv) {
        algorithms_.add(c.op, static_cast<int>(ReduceAlgorithm::kRing));
        const uint32_t batch = network_.open_batch(*this, r);
        const double pair[4] = {0, c.bytes, 0, 0};
        all_to_allv(c.ranks, pair, AllToAllAlgorithm::kDirect, batch);
        network_.close_batch(batch);
        return;
      }
      algorithms_.add(c.op, static_cast<int>(c.algorithm));
      if (c.deduplicated() && c.algorithm == AllToAllAlgorithm::kHierarchical) {
        running_[r].batches.push_back(node_dedup(c));
      } else if (c.algorithm == AllToAllAlgorithm::kLowLatency) {
        c.byte_matrix(bytes_);
        running_[r].batches = low_latency(c.ranks, bytes_);
      } else {
        c.byte_matrix(bytes_);
        const uint32_t batch = network_.open_batch(*this, r);
        all_to_allv(c.ranks, bytes_, c.algorithm, batch);
        network_.close_batch(batch);
        return;
      }
      start_batches(r);
      return;
    }
    case CollectiveOp::kAllReduce:
    case CollectiveOp::kReduceScatter:
    case CollectiveOp::kAllGather: {
      const ReduceAlgorithm algo = resolve_reduce_algorithm(network_.cluster(), c);
      algorithms_.add(c.op, static_cast<int>(algo));
      if (n <= 1 || c.bytes <= 0) {
        engine_.schedule_at(engine_.now(), done, arg);
        return;
      }
      if (algo == ReduceAlgorithm::kRing) return start_ring(c, done, arg);
      const uint32_t r = add_running(done, arg);
      if (algo == ReduceAlgorithm::kNvls) {
        running_[r].batches.push_back(nvls(c));
      } else {
        running_[r].batches = tree(c);
      }
      start_batches(r);
      return;
    }
  }
}

// Aggregates by path into dense tables (deterministic order, no hashing):
// intra-node pairs [node][i][j]; direct: every inter-node pair is its own
// path; hierarchical (PXN): node -> node on the destination's rail
// [node][node][rail], gathered to the rail GPU at the source [node][i][rail gpu].
void FlowCollectives::all_to_allv(std::span<const int> ranks, std::span<const double> bytes,
                                  AllToAllAlgorithm algo, uint32_t batch) {
  const hw::ClusterSpec& cluster = network_.cluster();
  const size_t n = ranks.size();
  const int per = cluster.node.gpus_per_node;
  if (n * n != bytes.size()) throw std::logic_error("all_to_allv: matrix is not n x n");
  const bool hier = algo == AllToAllAlgorithm::kHierarchical;
  const int nodes = cluster.nodes, nics = cluster.node.nics;
  std::vector<double> intra(static_cast<size_t>(nodes) * per * per, 0);
  std::vector<double> fwd(static_cast<size_t>(nodes) * per * per, 0);
  std::vector<double> inter(hier ? static_cast<size_t>(nodes) * nodes * nics : 0, 0);
  const SimTime intra_delay = network_.message_latency(false);
  for (size_t i = 0; i < n; ++i) {
    const int s = ranks[i], ns = s / per, ls = s % per;
    for (size_t j = 0; j < n; ++j) {
      const double b = bytes[i * n + j];
      if (i == j || b <= 0) continue;
      const int d = ranks[j], nd = d / per, ld = d % per;
      if (ns == nd) {
        intra[(static_cast<size_t>(ns) * per + ls) * per + ld] += b;
      } else if (!hier) {
        // Each pair its own transfer, NIC to NIC, across the spine between rails.
        const int rs = cluster.rail_of(s), rd = cluster.rail_of(d);
        net::FlowNetwork::Path p = network_.network_path(ns, rs, nd, rd);
        network_.append_intra_node(p, nd, network_.rail_gpu(rd), ld);
        network_.add_flow(batch, std::move(p), b, network_.message_latency(true, rs != rd));
      } else {
        const int rail = ld % nics;
        inter[(static_cast<size_t>(ns) * nodes + nd) * nics + rail] += b;
        const int rg = network_.rail_gpu(rail);
        if (rg != ls) fwd[(static_cast<size_t>(ns) * per + ls) * per + rg] += b;
      }
    }
  }
  for (int nd = 0; nd < nodes; ++nd) {
    for (int a = 0; a < per; ++a) {
      for (int b = 0; b < per; ++b) {
        const size_t k = (static_cast<size_t>(nd) * per + a) * per + b;
        if (intra[k] > 0) {
          network_.add_flow(batch, network_.gpu_path(nd * per + a, nd * per + b, false), intra[k],
                            intra_delay);
        }
        if (fwd[k] > 0) {
          network_.add_flow(batch, network_.gpu_path(nd * per + a, nd * per + b, false), fwd[k],
                            intra_delay);
        }
      }
    }
  }
  if (!hier) return;
  const SimTime inter_delay = network_.message_latency(true);
  for (int ns = 0; ns < nodes; ++ns) {
    for (int nd = 0; nd < nodes; ++nd) {
      for (int rail = 0; rail < nics; ++rail) {
        const double b = inter[(static_cast<size_t>(ns) * nodes + nd) * nics + rail];
        if (b > 0) network_.add_flow(batch, network_.rail_path(ns, nd, rail), b, inter_delay);
      }
    }
  }
}

// DeepEP's low-latency kernels: every copy its own message. Same-node copies
// over NVLink through the low-latency copy engine, the rest through the NICs,
// all at once (internode_ll.cu: RDMA puts are non-blocking, same-node copies
// are the warps' ld/st, and at 128 tokens per rank each SM sends about one
// token; see link_loads.h). Self copies never leave the GPU. Every flow
// waits the kernel's fixed time first, where the cluster has one.
std::vector<std::vector<FlowCollectives::PendingFlow>> FlowCollectives::low_latency(
    std::span<const int> ranks, std::span<const double> bytes) const {
  const hw::ClusterSpec& c = network_.cluster();
  const size_t n = ranks.size();
  const bool nvlink = c.node.low_latency_nvlink;
  auto delay = [&](bool inter_node, bool cross_rail) {
    return c.node.low_latency_kernel_s > 0
               ? SimTime::from_seconds(c.low_latency_fixed_s(inter_node, cross_rail))
               : network_.message_latency(inter_node, cross_rail);
  };
  std::vector<PendingFlow> flows;
  for (size_t i = 0; i < n; ++i) {
    const int s = ranks[i], ns = c.node_of(s);
    for (size_t j = 0; j < n; ++j) {
      const double b = bytes[i * n + j];
      const int d = ranks[j], nd = c.node_of(d);
      if (b <= 0 || i == j) continue;
      if (ns == nd && nvlink) {
        net::FlowNetwork::Path p{network_.copy_link(s, net::FlowNetwork::CopyEngine::kLowLatency)};
        network_.append_intra_node(p, ns, s % c.node.gpus_per_node, d % c.node.gpus_per_node);
        flows.push_back({std::move(p), b, delay(false, false)});
        continue;
      }
      const int rs = c.rail_of(s), rd = c.rail_of(d);
      flows.push_back({network_.network_path(ns, rs, nd, rd), b, delay(ns != nd, rs != rd)});
    }
  }
  std::vector<std::vector<PendingFlow>> batches;
  if (!flows.empty()) batches.push_back(std::move(flows));
  return batches;
}

// DeepEP's normal kernels (see link_loads.cpp): inside the sender's node once
// per destination rank over NVLink; to every other node once over RDMA on
// the sender's rail, then fanned out over NVLink by the GPU that received it.
// Both hops are pipelined in the kernel (forwarders stream chunks), so their
// flows run together. The combine takes the same paths backwards.
std::vector<FlowCollectives::PendingFlow> FlowCollectives::node_dedup(const Collective& c) const {
  const hw::ClusterSpec& cluster = network_.cluster();
  Collective dispatch_dir = c;
  dispatch_dir.transpose = false;
  std::vector<double> rank_bytes, node_bytes;
  dispatch_dir.token_bytes(rank_bytes, node_bytes);
  const bool reverse = c.transpose;
  const size_t n = c.ranks.size();
  const int per = cluster.node.gpus_per_node;
  using Engine = net::FlowNetwork::CopyEngine;
  std::vector<PendingFlow> flows;
  auto nvlink = [&](int from, int to, double b) {
    if (from == to || b <= 0) return;
    const int a = reverse ? to : from, z = reverse ? from : to;
    net::FlowNetwork::Path p{network_.copy_link(a, Engine::kAllToAll)};
    network_.append_intra_node(p, a / per, a % per, z % per);
    flows.push_back({std::move(p), b, network_.message_latency(false)});
  };
  for (size_t i = 0; i < n; ++i) {
    const int s = c.ranks[i], ns = s / per, rail = cluster.rail_of(s);
    for (size_t j = 0; j < n; ++j) {
      const int d = c.ranks[j], nd = d / per;
      if (ns == nd) {
        if (i != j) nvlink(s, d, rank_bytes[i * n + j]);
        continue;
      }
      const double b = node_bytes[i * n + j];
      if (b > 0) {
        flows.push_back(
            {reverse ? network_.rail_path(nd, ns, rail) : network_.rail_path(ns, nd, rail), b,
             network_.message_latency(true)});
      }
      nvlink(nd * per + network_.rail_gpu(rail), d, rank_bytes[i * n + j]);
    }
  }
  return flows;
}

// NVLS: each GPU's NVSwitch port carries the buffer ((n+1)/n of it for
// all-reduce) out and in at once; NCCL's NVLS efficiency is modelled as that
// many more bytes.
std::vector<FlowCollectives::PendingFlow> FlowCollectives::nvls(const Collective& c) const {
  const int n = static_cast<int>(c.ranks.size());
  const double volume = c.op == CollectiveOp::kAllReduce ? c.bytes * (n + 1.0) / n : c.bytes;
  std::vector<PendingFlow> flows;
  const SimTime latency = network_.message_latency(false) + network_.message_latency(false);
  for (int g : c.ranks) {
    flows.push_back({network_.switch_ports(g), volume / kNvlsEfficiency, latency});
  }
  return flows;
}

// Tree all-reduce: in every node a chain through its members (NVLink), and
// between nodes two binary trees (the second mirrored), each carrying half the
// buffer over one channel per NIC of the node's members; reduce up, then
// broadcast down the same paths reversed.
std::vector<std::vector<FlowCollectives::PendingFlow>> FlowCollectives::tree(
    const Collective& c) const {
  const hw::ClusterSpec& cluster = network_.cluster();
  const auto nodes = members_by_node(cluster, c.ranks);
  size_t channels = nodes.front().size();
  for (const auto& m : nodes) channels = std::min(channels, m.size());
  channels = std::min<size_t>(channels, cluster.node.nics);
  std::vector<PendingFlow> up, down;
  for (const auto& members : nodes) {
    for (size_t k = 0; k + 1 < members.size(); ++k) {
      up.push_back(transfer(members[k + 1], members[k], c.bytes));
      down.push_back(transfer(members[k], members[k + 1], c.bytes));
    }
  }
  const size_t count = nodes.size();
  for (int t = 0; t < 2; ++t) {
    for (size_t i = 1; i < count; ++i) {
      // Binary tree over positions; the second tree mirrors them.
      const size_t child = t == 0 ? i : count - 1 - i;
      const size_t parent = t == 0 ? (i - 1) / 2 : count - 1 - (i - 1) / 2;
      for (size_t ch = 0; ch < channels; ++ch) {
        const int a = nodes[child][ch], b = nodes[parent][ch];
        const double share = c.bytes / 2 / static_cast<double>(channels);
        up.push_back(transfer(a, b, share));
        down.push_back(transfer(b, a, share));
      }
    }
  }
  return {std::move(up), std::move(down)};
}

void FlowCollectives::start_batches(uint32_t r) {
  Running& run = running_[r];
  if (run.next_batch == run.batches.size()) {
    engine_.schedule_at(engine_.now(), *run.done, run.arg);
    return;
  }
  std::vector<PendingFlow> flows = std::move(run.batches[run.next_batch++]);
  const uint32_t batch = network_.open_batch(*this, r);
  for (PendingFlow& f : flows) network_.add_flow(batch, std::move(f.path), f.bytes, f.delay);
  network_.close_batch(batch);
}

// Ring channels: one unless the ring spans nodes, then one per NIC its
// members own on the node with fewest (NCCL: a search channel per NIC).
// Channel c walks every node's members rotated by c, so that each channel
// crosses between nodes on a different rail.
void FlowCollectives::start_ring(const Collective& c, EventHandler& done, uint64_t arg) {
  const int n = static_cast<int>(c.ranks.size());
  const uint32_t r = add_running(done, arg);
  const auto nodes = members_by_node(network_.cluster(), c.ranks);
  size_t channels = 1;
  if (nodes.size() > 1) {
    channels = nodes.front().size();
    for (const auto& m : nodes) channels = std::min(channels, m.size());
    channels = std::min<size_t>(channels, network_.cluster().node.nics);
  }
  Running& run = running_[r];
  if (channels == 1) {
    run.rings.emplace_back(c.ranks.begin(), c.ranks.end());
  } else {
    for (size_t ch = 0; ch < channels; ++ch) {
      std::vector<int> ring;
      for (const auto& members : nodes) {
        for (size_t k = 0; k < members.size(); ++k)
          ring.push_back(members[(k + ch) % members.size()]);
      }
      run.rings.push_back(std::move(ring));
    }
  }
  run.bytes_per_flow = c.bytes / n / static_cast<double>(channels);
  // All-reduce = reduce-scatter + all-gather: 2(n-1) ring steps of S/n.
  run.steps_left = c.op == CollectiveOp::kAllReduce ? 2 * (n - 1) : n - 1;
  start_ring_step(r);
}

// Each member sends its share to its successor on every channel.
void FlowCollectives::start_ring_step(uint32_t r) {
  --running_[r].steps_left;
  const uint32_t batch = network_.open_batch(*this, r);
  const int per = network_.cluster().node.gpus_per_node;
  for (const std::vector<int>& ring : running_[r].rings) {
    for (size_t i = 0; i < ring.size(); ++i) {
      const int src = ring[i], dst = ring[(i + 1) % ring.size()];
      if (src == dst) continue;
      network_.add_flow(batch, network_.gpu_path(src, dst, false), running_[r].bytes_per_flow,
                        network_.message_latency(src / per != dst / per));
    }
  }
  network_.close_batch(batch);
}

// A batch finished: the ring's next step or the next batch starts at once, or
// the collective is done (its owner is notified through the engine, now).
void FlowCollectives::batch_done(uint64_t r) {
  Running& run = running_[r];
  if (run.steps_left > 0) {
    start_ring_step(static_cast<uint32_t>(r));
    return;
  }
  start_batches(static_cast<uint32_t>(r));
}

}  // namespace moesim::coll
