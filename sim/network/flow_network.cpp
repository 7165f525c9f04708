#include "sim/network/flow_network.h"

#include <algorithm>
#include <cmath>
#include <queue>

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
  } else {
    // Rail switches meet through the spine (one node included: the NICs of
    // its GPUs are on different rails).
    const double uplink = c.rail_uplink_bytes_per_s();
    for (int r = 0; r < c.node.nics; ++r) {
      spine_up_.push_back(add_link(fmt::format("rail{}.spine_up", r), uplink));
      spine_down_.push_back(add_link(fmt::format("rail{}.spine_down", r), uplink));
    }
  }
  const double a2a = c.node.achievable_a2a_intra_bytes_per_s();
  const double ll = c.node.achievable_low_latency_intra_bytes_per_s();
  for (int g = 0; g < gpus; ++g) {
    a2a_copy_.push_back(add_link(fmt::format("gpu{}.a2a_copy", g), a2a));
    ll_copy_.push_back(add_link(fmt::format("gpu{}.low_latency_copy", g), ll));
  }
}

uint32_t FlowNetwork::copy_link(int gpu, CopyEngine engine) const {
  return engine == CopyEngine::kAllToAll ? a2a_copy_[gpu] : ll_copy_[gpu];
}

FlowNetwork::Path FlowNetwork::network_path(int src_node, int src_rail, int dst_node,
                                            int dst_rail) const {
  const int nics = cluster_.node.nics;
  Path p{nic_out_[src_node * nics + src_rail]};
  if (!leaf_up_.empty()) {
    const int la = cluster_.leaf_of_node(src_node), lb = cluster_.leaf_of_node(dst_node);
    if (la != lb) p.insert(p.end(), {leaf_up_[la], leaf_down_[lb]});
  } else if (src_rail != dst_rail) {
    p.insert(p.end(), {spine_up_[src_rail], spine_down_[dst_rail]});
  }
  p.push_back(nic_in_[dst_node * nics + dst_rail]);
  return p;
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

void FlowNetwork::append_intra_node(Path& p, int node, int a, int b) const {
  if (a == b) return;
  const int per = cluster_.node.gpus_per_node;
  if (!mesh_.empty()) {
    p.push_back(mesh_[(node * per + a) * per + b]);
  } else {
    p.push_back(nvl_out_[node * per + a]);
    p.push_back(nvl_in_[node * per + b]);
  }
}

FlowNetwork::Path FlowNetwork::rail_path(int src_node, int dst_node, int rail) const {
  return network_path(src_node, rail, dst_node, rail);
}

FlowNetwork::Path FlowNetwork::gpu_path(int src, int dst, bool via_dst_rail) const {
  const int per = cluster_.node.gpus_per_node;
  const int ns = src / per, nd = dst / per, ls = src % per, ld = dst % per;
  Path p;
  if (ns == nd) {
    append_intra_node(p, ns, ls, ld);
    return p;
  }
  const int rail = (via_dst_rail ? ld : ls) % cluster_.node.nics;
  if (via_dst_rail) append_intra_node(p, ns, ls, rail_gpu(rail));
  const Path across = rail_path(ns, nd, rail);
  p.insert(p.end(), across.begin(), across.end());
  append_intra_node(p, nd, rail_gpu(rail), ld);
  return p;
}

SimTime FlowNetwork::message_latency(bool inter_node, bool cross_rail) const {
  const double s = cluster_.node.intra_latency_s + cluster_.switch_hops_s(inter_node, cross_rail) +
                   cluster_.fabric.message_overhead_s;
  return SimTime::from_seconds(s);
}

uint32_t FlowNetwork::open_batch(BatchListener& listener, uint64_t tag) {
  batches_.push_back(Batch{&listener, tag, 0, false});
  return static_cast<uint32_t>(batches_.size() - 1);
}

void FlowNetwork::close_batch(uint32_t batch) {
  batches_[batch].closed = true;
  if (batches_[batch].outstanding == 0) batches_[batch].listener->batch_done(batches_[batch].tag);
}

void FlowNetwork::flow_finished(uint32_t batch) {
  Batch& b = batches_[batch];
  if (--b.outstanding == 0 && b.closed) b.listener->batch_done(b.tag);
}

void FlowNetwork::add_flow(uint32_t batch, Path p, double bytes, SimTime delay) {
  ++batches_[batch].outstanding;
  const uint32_t id = static_cast<uint32_t>(flows_.size());
  flows_.push_back(Flow{bytes, 0, bytes, std::move(p), batch, false});
  ++flows_started_;
  bytes_sent_ += bytes;
  const SimTime at = engine_.now() + delay;
  pending_starts_.push_back({at, id});
  // One start event per distinct start time, however many flows share it.
  if (start_times_.insert(at.ps()).second) engine_.schedule_at(at, *this, kStartEvent);
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
        flow_finished(f.batch);
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
  for (uint32_t id : finished) flow_finished(flows_[id].batch);
}

}  // namespace moesim::net
