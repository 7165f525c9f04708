#include "workloads/gating.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "sim/core/rng.h"

namespace moesim::workloads {

GatingConfig parse_gating(const Json& value, const std::string& path) {
  ConfigObject o(value, path);
  GatingConfig g;
  g.policy =
      o.choice_or("policy", "token_choice", {"token_choice", "expert_choice"}) == "token_choice"
          ? GatingConfig::Policy::kTokenChoice
          : GatingConfig::Policy::kExpertChoice;
  if (o.has("capacity_factor")) {
    const Json& c = o.value("capacity_factor");
    if (c.is_string() && c.get<std::string>() == "dropless") {
      g.capacity_factor = std::numeric_limits<double>::infinity();
    } else {
      g.capacity_factor = expect_number(c, o.field_path("capacity_factor"), 1e-3, 1e6);
    }
  }
  g.drop = o.choice_or("drop_policy", "arrival", {"arrival", "score"}) == "arrival"
               ? GatingConfig::Drop::kArrival
               : GatingConfig::Drop::kScore;
  g.capacity_per_rank = o.choice_or("capacity_scope", "expert", {"expert", "ep_rank"}) == "ep_rank";
  g.device_limit = static_cast<int>(o.integer_or("device_limit", 0, 0, 1 << 20));
  g.node_limit = static_cast<int>(o.integer_or("node_limit", 0, 0, 1 << 20));
  g.redundant_experts = static_cast<int>(o.integer_or("redundant_experts", 0, 0, 1 << 20));
  o.finish();
  if (g.policy == GatingConfig::Policy::kExpertChoice && g.dropless()) {
    throw_config_error(join_path(path, "capacity_factor"),
                       "expert choice needs a finite capacity factor");
  }
  return g;
}

Json gating_json(const GatingConfig& g) {
  Json j;
  j["policy"] = g.policy == GatingConfig::Policy::kTokenChoice ? "token_choice" : "expert_choice";
  j["capacity_factor"] = g.dropless() ? Json("dropless") : Json(g.capacity_factor);
  j["drop_policy"] = g.drop == GatingConfig::Drop::kArrival ? "arrival" : "score";
  j["capacity_scope"] = g.capacity_per_rank ? "ep_rank" : "expert";
  j["device_limit"] = g.device_limit;
  j["node_limit"] = g.node_limit;
  j["redundant_experts"] = g.redundant_experts;
  return j;
}

int64_t expert_capacity(double c, int64_t tokens, int top_k, int experts) {
  if (std::isinf(c)) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(std::ceil(c * static_cast<double>(tokens) * top_k / experts));
}

ExpertPlacement place_experts(int experts, int ep, int redundant, std::span<const double> load) {
  ExpertPlacement p;
  p.experts = experts;
  p.ep = ep;
  p.slots = experts + redundant;
  p.expert_slots.assign(experts, {});
  p.slot_expert.assign(p.slots, -1);
  if (redundant == 0) {
    for (int e = 0; e < experts; ++e) {
      p.expert_slots[e] = {e};
      p.slot_expert[e] = e;
    }
    return p;
  }
  // Replica counts: repeatedly give one more replica to the expert with the
  // highest load per replica (at most one replica per rank).
  std::vector<int> replicas(experts, 1);
  for (int r = 0; r < redundant; ++r) {
    int best = -1;
    for (int e = 0; e < experts; ++e) {
      if (replicas[e] >= ep) continue;
      if (best < 0 || load[e] / replicas[e] > load[best] / replicas[best]) best = e;
    }
    if (best < 0) best = r % experts;  // every expert on every rank already
    ++replicas[best];
  }
  // Place replicas, heaviest first, on the least-loaded rank with a free
  // slot that does not already hold that expert.
  struct Item {
    double load;
    int expert;
  };
  std::vector<Item> items;
  for (int e = 0; e < experts; ++e) {
    for (int r = 0; r < replicas[e]; ++r) items.push_back({load[e] / replicas[e], e});
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.load > b.load; });
  const int per_rank = p.slots / ep;
  std::vector<double> rank_load(ep, 0);
  std::vector<int> rank_used(ep, 0);
  for (const Item& it : items) {
    int best = -1;
    for (int r = 0; r < ep; ++r) {
      if (rank_used[r] == per_rank) continue;
      bool holds = false;
      for (int s : p.expert_slots[it.expert]) holds |= s / per_rank == r;
      if (holds && best >= 0) continue;
      if (best < 0 || rank_load[r] < rank_load[best]) best = r;
    }
    const int slot = best * per_rank + rank_used[best]++;
    rank_load[best] += it.load;
    p.expert_slots[it.expert].push_back(slot);
    p.slot_expert[slot] = it.expert;
  }
  return p;
}

namespace {

// Device- and node-limited routing as DeepSeek's group-limited gating does it
// (DeepSeek-V2 section 2.1.2, V3 section 2.1.2): a token picks the M groups
// (EP ranks or nodes) holding its best scores, then its top-k experts by score
// inside them. The generator gives each token's unconstrained top-k in
// descending weight, so the groups of its first choices are its best groups,
// choices inside them stay, and each choice outside is replaced by the
// token's next-best expert inside: drawn, like every choice, in proportion to
// the experts' popularity, among the allowed groups' experts the token has not
// chosen. Uniform routing stays uniform under the limit.
void limit_groups(const RoutingBatch& batch, const GatingConfig& cfg, const ExpertPlacement& place,
                  std::span<const double> popularity, int ranks_per_node, uint64_t stream_seed,
                  std::vector<int32_t>& expert) {
  const int k = batch.top_k;
  const int group_size =
      cfg.node_limit > 0 ? place.slots_per_rank() * ranks_per_node : place.slots_per_rank();
  const int limit = cfg.node_limit > 0 ? cfg.node_limit : cfg.device_limit;
  const int groups = (place.slots + group_size - 1) / group_size;
  if (limit >= groups) return;
  std::vector<std::vector<int32_t>> members(groups);  // experts homed in each group
  for (int e = 0; e < place.experts; ++e) {
    members[place.expert_slots[e][0] / group_size].push_back(e);
  }
  Rng rng(stream_seed, 0x6e6f64656c696d69ull);  // "nodelimi"
  std::vector<int> allowed;
  // chosen_by[e] == t + 1 while token t holds expert e: a constant-time test
  // in the walks below (they visit every expert of the allowed groups). An
  // expert replaced below keeps its mark; it lies in a group that is not
  // allowed, which the walks never visit, so the mark is never read.
  std::vector<int64_t> chosen_by(place.experts, 0);
  for (int64_t t = 0; t < batch.tokens; ++t) {
    int32_t* ch = &expert[t * k];
    for (int c = 0; c < k; ++c) chosen_by[ch[c]] = t + 1;
    allowed.clear();
    for (int c = 0; c < k && static_cast<int>(allowed.size()) < limit; ++c) {
      const int g = place.expert_slots[ch[c]][0] / group_size;
      if (std::find(allowed.begin(), allowed.end(), g) == allowed.end()) allowed.push_back(g);
    }
    for (int c = 0; c < k; ++c) {
      const int g = place.expert_slots[ch[c]][0] / group_size;
      if (std::find(allowed.begin(), allowed.end(), g) != allowed.end()) continue;
      double total = 0;
      for (int ag : allowed) {
        for (int32_t e : members[ag]) {
          if (chosen_by[e] != t + 1) total += popularity[e];
        }
      }
      double pick = rng.uniform() * total;
      int32_t chosen = -1;  // the last candidate, should rounding leave pick > 0
      for (int ag : allowed) {
        for (int32_t e : members[ag]) {
          if (chosen_by[e] == t + 1) continue;
          chosen = e;
          pick -= popularity[e];
          if (pick <= 0) break;
        }
        if (pick <= 0) break;
      }
      if (chosen >= 0) {
        ch[c] = chosen;
        chosen_by[chosen] = t + 1;
      }
    }
  }
}

}  // namespace

void apply_gating(const RoutingBatch& batch, const GatingConfig& cfg, const ExpertPlacement& place,
                  std::span<const double> popularity, int ranks_per_node, GatingOutcome& out,
                  uint64_t stream_seed) {
  const int k = batch.top_k;
  const int64_t copies = batch.tokens * k;
  out.slot.assign(copies, -1);
  out.dropped_per_expert.assign(place.experts, 0);
  out.routed = out.dropped = 0;
  std::vector<int32_t> expert(batch.expert.begin(), batch.expert.end());

  if (cfg.node_limit > 0 || cfg.device_limit > 0) {
    limit_groups(batch, cfg, place, popularity, ranks_per_node, stream_seed, expert);
  }

  // Replicas: copy j of a replicated expert goes to replica (j mod replicas).
  std::vector<int32_t> rr(place.experts, 0);
  auto slot_for = [&](int32_t e) {
    const auto& s = place.expert_slots[e];
    return s.size() == 1 ? s[0] : s[rr[e]++ % s.size()];
  };

  const bool dropless = cfg.dropless();
  const int64_t cap_expert = expert_capacity(cfg.capacity_factor, batch.tokens, k, place.experts);
  if (cfg.policy == GatingConfig::Policy::kTokenChoice && dropless) {
    for (int64_t i = 0; i < copies; ++i) out.slot[i] = slot_for(expert[i]);
    out.routed = copies;
    return;
  }
  // Capacity is counted per expert or per EP rank.
  const bool per_rank = cfg.capacity_per_rank && cfg.policy == GatingConfig::Policy::kTokenChoice;
  const int64_t cap =
      per_rank ? cap_expert * place.slots_per_rank() * place.experts / place.slots : cap_expert;
  const int buckets = per_rank ? place.ep : place.experts;
  auto bucket_of = [&](int32_t e) {
    return per_rank ? place.rank_of_slot(place.expert_slots[e][0]) : e;
  };
  std::vector<int64_t> order(copies);
  std::iota(order.begin(), order.end(), 0);
  if (cfg.drop == GatingConfig::Drop::kScore || cfg.policy == GatingConfig::Policy::kExpertChoice) {
    // Highest gate weight first; ties in arrival order.
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return batch.weight[a] > batch.weight[b]; });
  }
  std::vector<int64_t> used(buckets, 0);
  for (int64_t i : order) {
    const int32_t e = expert[i];
    int64_t& u = used[bucket_of(e)];
    if (u < cap) {
      ++u;
      out.slot[i] = slot_for(e);
      ++out.routed;
    } else {
      ++out.dropped_per_expert[e];
      ++out.dropped;
    }
  }
}

}  // namespace moesim::workloads
