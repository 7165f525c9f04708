#include "sim/network/flow_network.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <queue>
#include <stdexcept>

#include <fmt/format.h>

namespace moesim::net {
namespace {

constexpr uint64_t kStartEvent = 1;
constexpr uint64_t kCompletionEvent = 2;

}  // namespace

FlowNetwork::FlowNetwork(Engine& engine, const hw::ClusterSpec& c) : engine_(engine), cluster_(c) {
  const int gpus = c.gpu_count(), per = c.node.gpus_per_node;
  const double nvlink = c.node.achievable_intra_bytes_per_s();
  const double nic = c.node.achievable_nic_bytes_per_s();
  if (c.node.intra == hw::IntraNodeFabric::kMesh) {
    mesh_.resize(static_cast<size_t>(c.nodes) * per * per);
    for (int n = 0; n < c.nodes; ++n) {
      for (int i = 0; i < per; ++i) {
        for (int j = 0; j < per; ++j) {
          if (i != j) {
            mesh_[(n * per + i) * per + j] =
                add_link(fmt::format("node{}.gpu{}->gpu{}", n, i, j), nvlink);
          }
        }
      }
    }
  } else {
    for (int g = 0; g < gpus; ++g) {
      nvl_out_.push_back(add_link(fmt::format("gpu{}.intra_out", g), nvlink));
      nvl_in_.push_back(add_link(fmt::format("gpu{}.intra_in", g), nvlink));
    }
  }
  for (int n = 0; n < c.nodes; ++n) {
    for (int k = 0; k < c.node.nics; ++k) {
      nic_out_.push_back(add_link(fmt::format("node{}.nic{}.out", n, k), nic));
      nic_in_.push_back(add_link(fmt::format("node{}.nic{}.in", n, k), nic));
    }
  }
  if (c.fabric.kind == hw::InterNodeFabric::kFatTree) {
    const int leaves = (c.nodes + c.fabric.nodes_per_leaf - 1) / c.fabric.nodes_per_leaf;
    const double uplink = c.leaf_uplink_bytes_per_s();
    for (int l = 0; l < leaves; ++l) {
      leaf_up_.push_back(add_link(fmt::format("leaf{}.up", l), uplink));
      leaf_down_.push_back(add_link(fmt::format("leaf{}.down", l), uplink));
    }
  }
}

uint32_t FlowNetwork::add_link(const std::string& name, double capacity) {
  links_.push_back(Link{capacity, 0, {}});
  link_names_.push_back(name);
  return static_cast<uint32_t>(links_.size() - 1);
}

std::vector<FlowNetwork::LinkStats> FlowNetwork::link_stats() const {
  std::vector<LinkStats> out;
  for (size_t i = 0; i < links_.size(); ++i) {
    out.push_back({link_names_[i], links_[i].capacity, links_[i].carried});
  }
  return out;
}

// The links a transfer from one GPU to another crosses. Across nodes it uses
// the NIC on the source GPU's rail (direct) or the destination GPU's rail
// (via_dst_rail: forwarded over NVLink to the rail GPU first, as NCCL's PXN
// and DeepEP do); at the far end it is forwarded to its GPU over NVLink.
std::vector<uint32_t> FlowNetwork::path(int src, int dst, bool via_dst_rail) const {
  const int per = cluster_.node.gpus_per_node;
  const int ns = src / per, nd = dst / per, ls = src % per, ld = dst % per;
  std::vector<uint32_t> p;
  auto intra = [&](int node, int a, int b) {
    if (a == b) return;
    if (!mesh_.empty()) {
      p.push_back(mesh_[(node * per + a) * per + b]);
    } else {
      p.push_back(nvl_out_[node * per + a]);
      p.push_back(nvl_in_[node * per + b]);
    }
  };
  if (ns == nd) {
    intra(ns, ls, ld);
    return p;
  }
  const int nics = cluster_.node.nics;
  const int rail = (via_dst_rail ? ld : ls) % nics;
  // The GPU that owns NIC `rail` in each node.
  const int rail_gpu = rail * per / nics;
  if (via_dst_rail) intra(ns, ls, rail_gpu);
  p.push_back(nic_out_[ns * nics + rail]);
  if (!leaf_up_.empty()) {
    const int la = cluster_.leaf_of_node(ns), lb = cluster_.leaf_of_node(nd);
    if (la != lb) {
      p.push_back(leaf_up_[la]);
      p.push_back(leaf_down_[lb]);
    }
  }
  p.push_back(nic_in_[nd * nics + rail]);
  intra(nd, rail_gpu, ld);
  return p;
}

void FlowNetwork::add_flow(std::vector<uint32_t> p, double bytes, uint32_t phase, SimTime delay) {
  ++phases_[phase].outstanding;
  const uint32_t id = static_cast<uint32_t>(flows_.size());
  flows_.push_back(Flow{bytes, 0, bytes, std::move(p), phase, false});
  ++flows_started_;
  bytes_sent_ += bytes;
  const SimTime at = engine_.now() + delay;
  pending_starts_.push_back({at, id});
  // One start event per distinct start time, however many flows share it.
  if (start_times_.insert(at.ps()).second) engine_.schedule_at(at, *this, kStartEvent);
}

namespace {
SimTime flow_delay(const hw::ClusterSpec& c, bool inter) {
  const double s = c.node.intra_latency_s + (inter ? 3 * c.fabric.hop_latency_s : 0) +
                   c.fabric.message_overhead_s;
  return SimTime::from_seconds(s);
}
}  // namespace

void FlowNetwork::all_to_allv(std::span<const int> ranks, std::span<const double> bytes,
                              AllToAllAlgo algo, EventHandler& done, uint64_t arg) {
  const size_t n = ranks.size();
  const int per = cluster_.node.gpus_per_node;
  if (n * n != bytes.size()) throw std::logic_error("all_to_allv: matrix is not n x n");
  collectives_.push_back(Collective{&done, arg, {}, 0});
  const uint32_t c = static_cast<uint32_t>(collectives_.size() - 1);
  phases_.push_back(Phase{0, c});
  const uint32_t phase = static_cast<uint32_t>(phases_.size() - 1);
  // Aggregate by path into dense tables (deterministic order, no hashing):
  // intra-node pairs [node][i][j]; direct: source GPU -> destination node on
  // the source's rail [gpu][node], forwarded at the destination [gpu][local];
  // hierarchical: node -> node on the destination's rail [node][node][rail],
  // gathered to the rail GPU at the source [gpu][local].
  const bool hier = algo == AllToAllAlgo::kHierarchical;
  const int nodes = cluster_.nodes, nics = cluster_.node.nics;
  std::vector<double> intra(static_cast<size_t>(nodes) * per * per, 0);
  std::vector<double> fwd(static_cast<size_t>(nodes) * per * per, 0);
  std::vector<double> inter(
      hier ? static_cast<size_t>(nodes) * nodes * nics : static_cast<size_t>(nodes) * per * nodes,
      0);
  auto rail_gpu_of = [&](int rail) { return rail * per / nics; };
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
        const int rg = rail_gpu_of(ls % nics);
        if (rg != ld) fwd[(static_cast<size_t>(nd) * per + rg) * per + ld] += b;
      } else {
        const int rail = ld % nics;
        inter[(static_cast<size_t>(ns) * nodes + nd) * nics + rail] += b;
        const int rg = rail_gpu_of(rail);
        if (rg != ls) fwd[(static_cast<size_t>(ns) * per + ls) * per + rg] += b;
      }
    }
  }
  auto fabric = [&](int na, int nb, std::vector<uint32_t>& p) {
    if (leaf_up_.empty()) return;
    const int la = cluster_.leaf_of_node(na), lb = cluster_.leaf_of_node(nb);
    if (la != lb) p.insert(p.end(), {leaf_up_[la], leaf_down_[lb]});
  };
  const SimTime intra_delay = flow_delay(cluster_, false), inter_delay = flow_delay(cluster_, true);
  for (int nd = 0; nd < nodes; ++nd) {
    for (int a = 0; a < per; ++a) {
      for (int b = 0; b < per; ++b) {
        const size_t k = (static_cast<size_t>(nd) * per + a) * per + b;
        if (intra[k] > 0)
          add_flow(path(nd * per + a, nd * per + b, false), intra[k], phase, intra_delay);
        if (fwd[k] > 0)
          add_flow(path(nd * per + a, nd * per + b, false), fwd[k], phase, intra_delay);
      }
    }
  }
  if (!hier) {
    for (int s = 0; s < nodes * per; ++s) {
      for (int nd = 0; nd < nodes; ++nd) {
        const double b = inter[static_cast<size_t>(s) * nodes + nd];
        if (b <= 0) continue;
        const int rail = (s % per) % nics;
        std::vector<uint32_t> p{nic_out_[(s / per) * nics + rail]};
        fabric(s / per, nd, p);
        p.push_back(nic_in_[nd * nics + rail]);
        add_flow(std::move(p), b, phase, inter_delay);
      }
    }
  } else {
    for (int ns = 0; ns < nodes; ++ns) {
      for (int nd = 0; nd < nodes; ++nd) {
        for (int rail = 0; rail < nics; ++rail) {
          const double b = inter[(static_cast<size_t>(ns) * nodes + nd) * nics + rail];
          if (b <= 0) continue;
          std::vector<uint32_t> p{nic_out_[ns * nics + rail]};
          fabric(ns, nd, p);
          p.push_back(nic_in_[nd * nics + rail]);
          add_flow(std::move(p), b, phase, inter_delay);
        }
      }
    }
  }
  if (phases_[phase].outstanding == 0) finish_phase(phase);
}

void FlowNetwork::ring(std::span<const int> ranks, double bytes_per_step, int steps,
                       EventHandler& done, uint64_t arg) {
  const size_t n = ranks.size();
  Collective col{&done, arg, {}, 0};
  for (int s = 0; s < steps; ++s) {
    std::vector<std::pair<std::array<int, 2>, double>> step;
    for (size_t i = 0; i < n; ++i) step.push_back({{ranks[i], ranks[(i + 1) % n]}, bytes_per_step});
    col.steps.push_back(std::move(step));
  }
  collectives_.push_back(std::move(col));
  start_collective(static_cast<uint32_t>(collectives_.size() - 1));
}

// Starts the next ring step of collective c (or completes it).
void FlowNetwork::start_collective(uint32_t c) {
  Collective& col = collectives_[c];
  if (col.next_step == col.steps.size()) {
    engine_.schedule_at(engine_.now(), *col.done, col.arg);
    return;
  }
  phases_.push_back(Phase{0, c});
  const uint32_t phase = static_cast<uint32_t>(phases_.size() - 1);
  const auto step = collectives_[c].steps[collectives_[c].next_step++];
  const int per = cluster_.node.gpus_per_node;
  for (const auto& [pair, b] : step) {
    if (b <= 0 || pair[0] == pair[1]) continue;
    add_flow(path(pair[0], pair[1], false), b, phase,
             flow_delay(cluster_, pair[0] / per != pair[1] / per));
  }
  if (phases_[phase].outstanding == 0) finish_phase(phase);
}

void FlowNetwork::all_reduce(std::span<const int> ranks, double bytes, EventHandler& done,
                             uint64_t arg) {
  const int n = static_cast<int>(ranks.size());
  if (n <= 1 || bytes <= 0) return engine_.schedule_at(engine_.now(), done, arg), void();
  ring(ranks, bytes / n, 2 * (n - 1), done, arg);
}

void FlowNetwork::reduce_scatter(std::span<const int> ranks, double bytes, EventHandler& done,
                                 uint64_t arg) {
  const int n = static_cast<int>(ranks.size());
  if (n <= 1 || bytes <= 0) return engine_.schedule_at(engine_.now(), done, arg), void();
  ring(ranks, bytes / n, n - 1, done, arg);
}

void FlowNetwork::all_gather(std::span<const int> ranks, double bytes, EventHandler& done,
                             uint64_t arg) {
  reduce_scatter(ranks, bytes, done, arg);
}

void FlowNetwork::send_recv(int src, int dst, double bytes, EventHandler& done, uint64_t arg) {
  const int r[2] = {src, dst};
  const double m[4] = {0, bytes, 0, 0};
  all_to_allv(r, m, AllToAllAlgo::kDirect, done, arg);
}

// A phase's flows are all done: the collective's next ring step starts, or
// (no steps left, or an all-to-all) its owner is notified.
void FlowNetwork::finish_phase(uint32_t phase) {
  start_collective(phases_[phase].collective);
}

void FlowNetwork::advance_to_now() {
  const double dt = (engine_.now() - last_advance_).seconds();
  last_advance_ = engine_.now();
  if (dt <= 0) return;
  for (uint32_t id : active_) {
    Flow& f = flows_[id];
    const double moved = std::min(f.remaining, f.rate * dt);
    f.remaining -= moved;
    bytes_delivered_ += moved;
    for (uint32_t l : f.path) links_[l].carried += moved;
  }
}

// Max-min fair rates by progressive filling over the flows connected to
// `seed_links`: repeatedly saturate the link with the smallest fair share.
void FlowNetwork::recompute(const std::vector<uint32_t>& seed_links) {
  std::vector<uint32_t> comp_links, comp_flows;
  std::vector<char> link_seen(links_.size(), 0);
  std::vector<uint32_t> stack;
  for (uint32_t l : seed_links) {
    if (!link_seen[l]) link_seen[l] = 1, stack.push_back(l);
  }
  // Marks are cleared for this component's flows on the way out, so a
  // recomputation costs the size of the component, not of every flow the
  // network has ever carried.
  if (flow_mark_.size() < flows_.size()) flow_mark_.resize(flows_.size(), 0);
  std::vector<uint8_t>& flow_seen = flow_mark_;
  while (!stack.empty()) {
    const uint32_t l = stack.back();
    stack.pop_back();
    comp_links.push_back(l);
    for (uint32_t f : links_[l].flows) {
      if (flow_seen[f]) continue;
      flow_seen[f] = 1;
      comp_flows.push_back(f);
      for (uint32_t l2 : flows_[f].path) {
        if (!link_seen[l2]) link_seen[l2] = 1, stack.push_back(l2);
      }
    }
  }
  std::vector<double> cap(links_.size());
  std::vector<uint32_t> count(links_.size(), 0);
  for (uint32_t l : comp_links) {
    cap[l] = links_[l].capacity;
    count[l] = static_cast<uint32_t>(links_[l].flows.size());
  }
  using Item = std::pair<double, uint32_t>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> heap;
  for (uint32_t l : comp_links) {
    if (count[l]) heap.push({cap[l] / count[l], l});
  }
  std::vector<uint8_t>& frozen = flow_mark_;  // reuse: 1 = in component, 2 = frozen
  while (!heap.empty()) {
    const auto [share, l] = heap.top();
    heap.pop();
    if (count[l] == 0 || std::fabs(share - cap[l] / count[l]) > 1e-12 * share) continue;
    for (uint32_t f : links_[l].flows) {
      if (frozen[f] == 2) continue;
      frozen[f] = 2;
      flows_[f].rate = share;
      for (uint32_t l2 : flows_[f].path) {
        cap[l2] = std::max(0.0, cap[l2] - share);
        --count[l2];
        if (count[l2]) heap.push({cap[l2] / count[l2], l2});
      }
    }
  }
  for (uint32_t f : comp_flows) flow_mark_[f] = 0;
}

void FlowNetwork::schedule_next_completion() {
  if (completion_.valid()) engine_.cancel(completion_);
  completion_ = EventId();
  double soonest = INFINITY;
  for (uint32_t id : active_) {
    const Flow& f = flows_[id];
    if (f.rate > 0) soonest = std::min(soonest, f.remaining / f.rate);
  }
  if (std::isfinite(soonest)) {
    // Round up to a whole picosecond so the flow is done when the event fires.
    const SimTime dt = SimTime::from_ps(static_cast<int64_t>(std::ceil(soonest * 1e12)));
    completion_ = engine_.schedule_after(dt, *this, kCompletionEvent);
  }
}

void FlowNetwork::on_event(uint64_t kind) {
  advance_to_now();
  std::vector<uint32_t> touched;
  if (kind == kStartEvent) {
    start_times_.erase(engine_.now().ps());
    // Release every flow whose latency has elapsed.
    auto it = std::partition(pending_starts_.begin(), pending_starts_.end(),
                             [&](const auto& p) { return p.first > engine_.now(); });
    for (auto s = it; s != pending_starts_.end(); ++s) {
      Flow& f = flows_[s->second];
      if (f.path.empty() || f.size <= 0) {
        f.remaining = 0;
        bytes_delivered_ += f.size;
        if (--phases_[f.phase].outstanding == 0) finish_phase(f.phase);
        continue;
      }
      f.active = true;
      active_.push_back(s->second);
      for (uint32_t l : f.path) {
        links_[l].flows.push_back(s->second);
        touched.push_back(l);
      }
    }
    pending_starts_.erase(it, pending_starts_.end());
  } else {
    completion_ = EventId();
  }
  // Retire flows that are done (within rounding).
  std::vector<uint32_t> finished;
  for (size_t i = 0; i < active_.size();) {
    Flow& f = flows_[active_[i]];
    if (f.remaining <= 1e-9 * f.size + 1e-6) {
      bytes_delivered_ += f.remaining;
      for (uint32_t l : f.path) links_[l].carried += f.remaining;
      f.remaining = 0;
      f.active = false;
      finished.push_back(active_[i]);
      active_[i] = active_.back();
      active_.pop_back();
    } else {
      ++i;
    }
  }
  if (!finished.empty()) {
    for (uint32_t id : finished) {
      for (uint32_t l : flows_[id].path) touched.push_back(l);
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint32_t l : touched) {
      auto& fl = links_[l].flows;
      fl.erase(std::remove_if(fl.begin(), fl.end(), [&](uint32_t f) { return !flows_[f].active; }),
               fl.end());
    }
  }
  if (!touched.empty()) recompute(touched);
  schedule_next_completion();
  for (uint32_t id : finished) {
    if (--phases_[flows_[id].phase].outstanding == 0) finish_phase(flows_[id].phase);
  }
}

}  // namespace moesim::net
