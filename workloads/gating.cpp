#include "workloads/gating.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "sim/core/rng.h"
#include "workloads/routing_generator.h"

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

void check_group_limits(const GatingConfig& g, int top_k, int slots_per_rank, int ranks_per_node,
                        const std::string& path) {
  if (g.device_limit > 0 && static_cast<int64_t>(g.device_limit) * slots_per_rank < top_k) {
    throw_config_error(join_path(path, "device_limit"),
                       fmt::format("{} x {} expert slots per EP rank cannot hold a token's {} "
                                   "experts; raise it to at least {}",
                                   g.device_limit, slots_per_rank, top_k,
                                   (top_k + slots_per_rank - 1) / slots_per_rank));
  }
  const int64_t per_node = static_cast<int64_t>(slots_per_rank) * ranks_per_node;
  if (g.node_limit > 0 && g.node_limit * per_node < top_k) {
    throw_config_error(
        join_path(path, "node_limit"),
        fmt::format("{} x {} expert slots per node cannot hold a token's {} "
                    "experts; raise it to at least {}",
                    g.node_limit, per_node, top_k, (top_k + per_node - 1) / per_node));
  }
}

GatingConfig with_model_router(GatingConfig g, const MoeModelConfig& model) {
  const bool limited = model.router_groups > 1 && model.router_topk_groups < model.router_groups &&
                       model.routed_experts % model.router_groups == 0;
  g.expert_groups = limited ? model.router_groups : 1;
  g.expert_group_limit = limited ? model.router_topk_groups : 0;
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

namespace {

// Gives `extra` more replicas, one at a time, to the member with the highest
// load per replica, at most `cap` replicas each (EPLB replicate_experts).
void add_replicas(std::span<const int> members, std::span<const double> load, int extra, int cap,
                  std::vector<int>& replicas) {
  for (int r = 0; r < extra; ++r) {
    int best = -1;
    for (int e : members) {
      if (replicas[e] >= cap) continue;
      if (best < 0 || load[e] / replicas[e] > load[best] / replicas[best]) best = e;
    }
    if (best < 0) best = members[r % members.size()];  // every member on every rank already
    ++replicas[best];
  }
}

// Places the members' replicas, heaviest first, on the least-loaded of ranks
// [first_rank, first_rank + ranks) with a free slot that does not already
// hold that expert.
void pack_replicas(std::span<const int> members, std::span<const double> load,
                   std::span<const int> replicas, int first_rank, int ranks,
                   std::vector<double>& rank_load, std::vector<int>& rank_used,
                   ExpertPlacement& p) {
  struct Item {
    double load;
    int expert;
  };
  std::vector<Item> items;
  for (int e : members) {
    for (int r = 0; r < replicas[e]; ++r) items.push_back({load[e] / replicas[e], e});
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.load > b.load; });
  const int per_rank = p.slots_per_rank();
  for (const Item& it : items) {
    int best = -1;
    for (int r = first_rank; r < first_rank + ranks; ++r) {
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
}

// EPLB's hierarchical policy: groups -> nodes (the heaviest group first, to
// the lightest node with room), then replicas and ranks inside each node.
std::vector<std::vector<int>> experts_by_node(int experts, int groups, int nodes,
                                              std::span<const double> load) {
  const int group_size = experts / groups, groups_per_node = groups / nodes;
  std::vector<double> group_load(groups, 0);
  for (int e = 0; e < experts; ++e) group_load[e / group_size] += load[e];
  std::vector<int> order(groups);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return group_load[a] > group_load[b]; });
  std::vector<double> node_load(nodes, 0);
  std::vector<std::vector<int>> node_groups(nodes);
  for (int g : order) {
    int best = -1;
    for (int n = 0; n < nodes; ++n) {
      if (static_cast<int>(node_groups[n].size()) == groups_per_node) continue;
      if (best < 0 || node_load[n] < node_load[best]) best = n;
    }
    node_groups[best].push_back(g);
    node_load[best] += group_load[g];
  }
  std::vector<std::vector<int>> members(nodes);
  for (int n = 0; n < nodes; ++n) {
    std::sort(node_groups[n].begin(), node_groups[n].end());
    for (int g : node_groups[n]) {
      for (int e = g * group_size; e < (g + 1) * group_size; ++e) members[n].push_back(e);
    }
  }
  return members;
}

}  // namespace

ExpertPlacement place_experts(int experts, int ep, int redundant, std::span<const double> load,
                              int groups, int nodes) {
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
  std::vector<int> replicas(experts, 1);
  std::vector<double> rank_load(ep, 0);
  std::vector<int> rank_used(ep, 0);
  const bool hierarchical = groups > 1 && nodes > 1 && experts % groups == 0 &&
                            groups % nodes == 0 && ep % nodes == 0 && p.slots % nodes == 0;
  if (!hierarchical) {
    std::vector<int> all(experts);
    std::iota(all.begin(), all.end(), 0);
    add_replicas(all, load, redundant, ep, replicas);
    pack_replicas(all, load, replicas, 0, ep, rank_load, rank_used, p);
    return p;
  }
  const int ranks_per_node = ep / nodes;
  const std::vector<std::vector<int>> members = experts_by_node(experts, groups, nodes, load);
  for (int n = 0; n < nodes; ++n) {
    add_replicas(members[n], load, p.slots / nodes - experts / nodes, ranks_per_node, replicas);
    pack_replicas(members[n], load, replicas, n * ranks_per_node, ranks_per_node, rank_load,
                  rank_used, p);
  }
  return p;
}

namespace {

// Group-limited routing as DeepSeek's gating does it (DeepSeek-V2 section
// 2.1.2, V3 section 2.1.2): a token picks the `limit` groups holding its best
// scores, then its top-k experts by score inside them. The groups are the
// model router's own (n_group consecutive experts each) or the EP ranks or
// nodes of device- and node-limited routing. The generator gives each
// token's unconstrained top-k in descending weight, so the groups of its
// first choices are its best groups, choices inside them stay, and each
// choice outside is replaced by the token's next-best expert inside: drawn,
// like every choice, in proportion to the experts' popularity, among the
// allowed groups' experts the token has not chosen. Uniform routing stays
// uniform under the limit.
class GroupLimiter {
 public:
  GroupLimiter(std::span<const int32_t> group_of, int groups, int limit,
               std::span<const double> popularity)
      : group_of_(group_of),
        popularity_(popularity),
        limit_(limit),
        members_(groups),
        group_total_(groups, 0),
        within_(groups),
        chosen_by_(group_of.size(), 0),
        allowed_at_(groups, 0),
        allowed_(limit + 1) {
    for (size_t e = 0; e < group_of.size(); ++e) {
      members_[group_of[e]].push_back(static_cast<int32_t>(e));
      group_total_[group_of[e]] += popularity[e];
    }
    std::vector<double> weights;
    for (int g = 0; g < groups; ++g) {
      if (!(group_total_[g] > 0)) continue;
      weights.clear();
      for (int32_t e : members_[g]) weights.push_back(popularity[e]);
      within_[g] = AliasTable(weights);
    }
  }

  // Replaces token `t`'s choices `ch[0..k)` outside its allowed groups.
  void limit(uint64_t t, int32_t* ch, int k, Rng& rng) {
    if (members_.size() <= 64) return limit_by_mask(t, ch, k, rng);
    stamp_ = t + 1;
    allowed_count_ = 0;
    allowed_total_ = 0;
    for (int c = 0; c < k; ++c) {
      const int32_t e = ch[c], g = group_of_[e];
      chosen_by_[e] = stamp_;
      if (allowed_at_[g] != stamp_ && allowed_count_ < limit_) {
        allowed_at_[g] = stamp_;
        allowed_[allowed_count_++] = g;
        allowed_total_ += group_total_[g];
      }
    }
    for (int c = 0; c < k; ++c) {
      if (allowed_at_[group_of_[ch[c]]] == stamp_) continue;
      replace(ch[c], rng);
    }
  }

 private:
  // limit() for at most 64 groups, the same choices with the allowed groups
  // as a bit mask and no branch on the (unpredictable) group of each choice:
  // a third of serving's routing time went to those mispredictions.
  void limit_by_mask(uint64_t t, int32_t* ch, int k, Rng& rng) {
    uint64_t allowed = 0;
    int count = 0;
    const int limit = limit_;
    for (int c = 0; c < k; ++c) {
      const int32_t g = group_of_[ch[c]];
      const uint64_t bit = uint64_t{1} << g;
      const uint64_t take =
          static_cast<uint64_t>((allowed & bit) == 0) & static_cast<uint64_t>(count < limit);
      allowed_[count] = g;  // kept only when taken (allowed_ has limit + 1 entries)
      allowed |= bit & (0 - take);
      count += static_cast<int>(take);
    }
    bool outside = false;
    for (int c = 0; c < k; ++c) outside |= !((allowed >> group_of_[ch[c]]) & 1);
    if (!outside) return;
    stamp_ = t + 1;
    allowed_count_ = count;
    allowed_total_ = 0;
    for (int a = 0; a < count; ++a) allowed_total_ += group_total_[allowed_[a]];
    for (int c = 0; c < k; ++c) chosen_by_[ch[c]] = stamp_;
    for (int c = 0; c < k; ++c) {
      if ((allowed >> group_of_[ch[c]]) & 1) continue;
      replace(ch[c], rng);
    }
  }

  void replace(int32_t& choice, Rng& rng) {
    const int32_t chosen = next_best(rng);
    if (chosen < 0) return;
    choice = chosen;
    chosen_by_[chosen] = stamp_;
  }

  // The token's next-best expert inside its allowed groups: in proportion to
  // popularity among the experts it does not hold. Drawn by rejection (a
  // group by its popularity, an expert in it by its own, again if the token
  // holds it): exact, and a draw or two while the token holds a small share
  // of the allowed popularity (DeepSeek-V3: at most 8 of 128 experts). After
  // 64 rejections, a walk over the candidates.
  int32_t next_best(Rng& rng) {
    for (int attempt = 0; attempt < 64 && allowed_total_ > 0; ++attempt) {
      double pick = rng.uniform() * allowed_total_;
      int a = 0;
      while (a + 1 < allowed_count_ && pick >= group_total_[allowed_[a]]) {
        pick -= group_total_[allowed_[a++]];
      }
      const int g = allowed_[a];
      if (!(group_total_[g] > 0)) continue;
      const int32_t e = members_[g][within_[g].draw(rng)];
      if (chosen_by_[e] != stamp_) return e;
    }
    double free = 0;
    for (int a = 0; a < allowed_count_; ++a) {
      for (int32_t e : members_[allowed_[a]]) {
        if (chosen_by_[e] != stamp_) free += popularity_[e];
      }
    }
    double pick = rng.uniform() * free;
    int32_t last = -1;  // should rounding leave pick > 0
    for (int a = 0; a < allowed_count_; ++a) {
      for (int32_t e : members_[allowed_[a]]) {
        if (chosen_by_[e] == stamp_) continue;
        last = e;
        pick -= popularity_[e];
        if (pick <= 0) return last;
      }
    }
    return last;
  }

  std::span<const int32_t> group_of_;
  std::span<const double> popularity_;
  int limit_;
  std::vector<std::vector<int32_t>> members_;  // the experts of each group
  std::vector<double> group_total_;            // their popularity
  std::vector<AliasTable> within_;             // an expert of the group, by popularity
  // Stamps: chosen_by_[e] == stamp_ while the token holds expert e (a
  // replaced expert keeps its stamp; it lies in a group the draws never
  // visit); allowed_at_[g] == stamp_ while group g is one of the token's
  // allowed_, whose popularity sums to allowed_total_.
  uint64_t stamp_ = 0;
  std::vector<uint64_t> chosen_by_, allowed_at_;
  std::vector<int32_t> allowed_;
  int allowed_count_ = 0;
  double allowed_total_ = 0;
};

void limit_groups(const RoutingBatch& batch, std::span<const int32_t> group_of, int groups,
                  int limit, std::span<const double> popularity, Rng rng,
                  std::vector<int32_t>& expert) {
  if (limit >= groups) return;
  GroupLimiter limiter(group_of, groups, limit, popularity);
  for (int64_t t = 0; t < batch.tokens; ++t) {
    limiter.limit(static_cast<uint64_t>(t), &expert[t * batch.top_k], batch.top_k, rng);
  }
}

// The model router's groups first (what the model computes), then the
// placement's device or node limit (what the training setup adds on top).
void limit_all_groups(const RoutingBatch& batch, const GatingConfig& cfg,
                      const ExpertPlacement& place, std::span<const double> popularity,
                      int ranks_per_node, uint64_t stream_seed, std::vector<int32_t>& expert) {
  std::vector<int32_t> group_of(place.experts);
  if (cfg.expert_group_limit > 0 && cfg.expert_group_limit < cfg.expert_groups) {
    const int size = place.experts / cfg.expert_groups;
    for (int e = 0; e < place.experts; ++e) group_of[e] = e / size;
    limit_groups(batch, group_of, cfg.expert_groups, cfg.expert_group_limit, popularity,
                 Rng(stream_seed, 0x67726f75706c696dull),  // "grouplim"
                 expert);
  }
  if (cfg.node_limit > 0 || cfg.device_limit > 0) {
    const int group_size =
        cfg.node_limit > 0 ? place.slots_per_rank() * ranks_per_node : place.slots_per_rank();
    const int limit = cfg.node_limit > 0 ? cfg.node_limit : cfg.device_limit;
    const int groups = (place.slots + group_size - 1) / group_size;
    for (int e = 0; e < place.experts; ++e) group_of[e] = place.expert_slots[e][0] / group_size;
    limit_groups(batch, group_of, groups, limit, popularity,
                 Rng(stream_seed, 0x6e6f64656c696d69ull),  // "nodelimi"
                 expert);
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

  limit_all_groups(batch, cfg, place, popularity, ranks_per_node, stream_seed, expert);

  // Replicas: copy j of a replicated expert goes to replica (j mod replicas).
  // Each expert's slots are looked up in one flat array (the vector of
  // vectors cost a pointer chase per copy).
  std::vector<int32_t> rr(place.experts, 0), first(place.experts), replicas(place.experts);
  std::vector<int32_t> flat_slots;
  for (int e = 0; e < place.experts; ++e) {
    first[e] = static_cast<int32_t>(flat_slots.size());
    replicas[e] = static_cast<int32_t>(place.expert_slots[e].size());
    flat_slots.insert(flat_slots.end(), place.expert_slots[e].begin(), place.expert_slots[e].end());
  }
  auto slot_for = [&](int32_t e) {
    const int32_t n = replicas[e];
    return n == 1 ? flat_slots[first[e]] : flat_slots[first[e] + rr[e]++ % n];
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
