#include "sim/collectives/flow.h"

#include <stdexcept>

namespace moesim::coll {

FlowCollectives::FlowCollectives(Engine& engine, const hw::ClusterSpec& cluster)
    : engine_(engine), network_(engine, cluster) {}

void FlowCollectives::start(const Collective& c, EventHandler& done, uint64_t arg) {
  const int n = static_cast<int>(c.ranks.size());
  switch (c.op) {
    case CollectiveOp::kAllToAllV:
    case CollectiveOp::kSendRecv: {
      running_.push_back(Running{&done, arg, {}, 0, 0});
      const uint32_t batch = network_.open_batch(*this, static_cast<uint64_t>(running_.size() - 1));
      if (c.op == CollectiveOp::kSendRecv) {
        const double pair[4] = {0, c.bytes, 0, 0};
        all_to_allv(c.ranks, pair, AllToAllAlgorithm::kDirect, batch);
      } else {
        c.byte_matrix(bytes_);
        all_to_allv(c.ranks, bytes_, c.algorithm, batch);
      }
      network_.close_batch(batch);
      return;
    }
    case CollectiveOp::kAllReduce:
    case CollectiveOp::kReduceScatter:
    case CollectiveOp::kAllGather: {
      if (n <= 1 || c.bytes <= 0) {
        engine_.schedule_at(engine_.now(), done, arg);
        return;
      }
      // All-reduce = reduce-scatter + all-gather: 2(n-1) ring steps of S/n.
      const int steps = c.op == CollectiveOp::kAllReduce ? 2 * (n - 1) : n - 1;
      start_ring(c.ranks, c.bytes / n, steps, done, arg);
      return;
    }
  }
}

// Aggregates by path into dense tables (deterministic order, no hashing):
// intra-node pairs [node][i][j]; direct: source GPU -> destination node on the
// source's rail [gpu][node], forwarded at the destination [node][rail gpu][j];
// hierarchical: node -> node on the destination's rail [node][node][rail],
// gathered to the rail GPU at the source [node][i][rail gpu].
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
  std::vector<double> inter(
      hier ? static_cast<size_t>(nodes) * nodes * nics : static_cast<size_t>(nodes) * per * nodes,
      0);
  for (size_t i = 0; i < n; ++i) {
    const int s = ranks[i], ns = s / per, ls = s % per;
    for (size_t j = 0; j < n; ++j) {
      const double b = bytes[i * n + j];
      if (i == j || b <= 0) continue;
      const int d = ranks[j], nd = d / per, ld = d % per;
      if (ns == nd) {
        intra[(static_cast<size_t>(ns) * per + ls) * per + ld] += b;
      } else if (!hier) {
        inter[static_cast<size_t>(s) * nodes + nd] += b;
        const int rg = network_.rail_gpu(ls % nics);
        if (rg != ld) fwd[(static_cast<size_t>(nd) * per + rg) * per + ld] += b;
      } else {
        const int rail = ld % nics;
        inter[(static_cast<size_t>(ns) * nodes + nd) * nics + rail] += b;
        const int rg = network_.rail_gpu(rail);
        if (rg != ls) fwd[(static_cast<size_t>(ns) * per + ls) * per + rg] += b;
      }
    }
  }
  const SimTime intra_delay = network_.message_latency(false);
  const SimTime inter_delay = network_.message_latency(true);
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
  if (!hier) {
    for (int s = 0; s < nodes * per; ++s) {
      for (int nd = 0; nd < nodes; ++nd) {
        const double b = inter[static_cast<size_t>(s) * nodes + nd];
        if (b <= 0) continue;
        network_.add_flow(batch, network_.rail_path(s / per, nd, (s % per) % nics), b, inter_delay);
      }
    }
    return;
  }
  for (int ns = 0; ns < nodes; ++ns) {
    for (int nd = 0; nd < nodes; ++nd) {
      for (int rail = 0; rail < nics; ++rail) {
        const double b = inter[(static_cast<size_t>(ns) * nodes + nd) * nics + rail];
        if (b > 0) network_.add_flow(batch, network_.rail_path(ns, nd, rail), b, inter_delay);
      }
    }
  }
}

void FlowCollectives::start_ring(std::span<const int> ranks, double bytes_per_step, int steps,
                                 EventHandler& done, uint64_t arg) {
  running_.push_back(
      Running{&done, arg, std::vector<int>(ranks.begin(), ranks.end()), bytes_per_step, steps});
  start_ring_step(static_cast<uint32_t>(running_.size() - 1));
}

// Each member sends bytes_per_step to its ring successor.
void FlowCollectives::start_ring_step(uint32_t r) {
  --running_[r].steps_left;
  const uint32_t batch = network_.open_batch(*this, r);
  const std::vector<int>& ring = running_[r].ring;
  const int per = network_.cluster().node.gpus_per_node;
  for (size_t i = 0; i < ring.size(); ++i) {
    const int src = ring[i], dst = ring[(i + 1) % ring.size()];
    if (src == dst) continue;
    network_.add_flow(batch, network_.gpu_path(src, dst, false), running_[r].bytes_per_step,
                      network_.message_latency(src / per != dst / per));
  }
  network_.close_batch(batch);
}

// A batch finished: the ring's next step starts at once, or the collective is
// done (its owner is notified through the engine, at this instant).
void FlowCollectives::batch_done(uint64_t r) {
  if (running_[r].steps_left > 0) {
    start_ring_step(static_cast<uint32_t>(r));
    return;
  }
  engine_.schedule_at(engine_.now(), *running_[r].done, running_[r].arg);
}

}  // namespace moesim::coll
