#include "sim/scenario/routing_plan.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "sim/core/parallel_for.h"
#include "sim/exec/rank_layout.h"
#include "sim/scenario/scenario.h"
#include "workloads/routing_generator.h"

namespace moesim::scenario {

RoutingKey routing_key(const Scenario& s) {
  const exec::ParallelConfig& p = s.setup.parallel;
  RoutingKey key;
  key.model = s.model;
  key.gating = s.gating;
  key.generator = s.routing.generator;
  key.seed = s.routing.seed;
  // Each EP rank routes its tensor-parallel (sequence-parallel) share of its
  // context-parallel rank's part of the micro-batch.
  key.tokens_per_rank = s.setup.workload.seq_len / p.cp * p.micro_batch_size / p.tp;
  key.steps = s.setup.workload.steps;
  const exec::RankLayout layout(p);
  // Only a generator that reads the sequences gets them: plans of the others
  // stay shared between layouts that mix sequences differently.
  const bool sequences = workloads::generator_reads_sequences(key.generator);
  for (int rank : layout.ep_group(0)) {
    key.ep_rank_node.push_back(s.cluster.node_of(rank));
    if (sequences) key.ep_rank_replica.push_back(layout.coords(rank).dp);
  }
  if (sequences) key.sequences_per_rank = p.micro_batch_size;
  key.routing_samples = s.options.routing_samples;
  key.max_routings_per_step = s.options.max_routings_per_step;
  return key;
}

RoutingBudget routing_budget(int64_t tokens_per_rank, int ep, int top_k, int moe_layers, int steps,
                             int samples_wanted, int64_t max_routings_per_step) {
  RoutingBudget b;
  const double budget = static_cast<double>(max_routings_per_step);
  const double per_sample = static_cast<double>(ep) * tokens_per_rank * top_k;
  b.samples = samples_wanted;
  b.generated_layers = moe_layers;
  if (per_sample * b.samples * b.generated_layers * steps > budget) b.samples = 1;
  if (per_sample * b.samples * b.generated_layers * steps > budget) {
    b.generated_layers = std::max(1, static_cast<int>(budget / (per_sample * steps)));
    b.warnings.push_back(fmt::format(
        "routing: {} of {} MoE layers generated, the others reuse them cyclically, 1 sample "
        "per layer and step (raise options.max_routings_per_step for more)",
        b.generated_layers, moe_layers));
  } else if (b.samples < samples_wanted) {
    b.warnings.push_back(
        "routing: 1 sample per layer and step (raise options.max_routings_per_step for more)");
  }
  b.subsample = std::max(1.0, std::ceil(per_sample * steps / budget));
  b.generated_per_rank = std::max<int64_t>(1, tokens_per_rank / static_cast<int64_t>(b.subsample));
  b.scale = static_cast<double>(tokens_per_rank) / b.generated_per_rank;
  if (b.subsample > 1) {
    b.warnings.push_back(fmt::format(
        "routing sampled: {} of {} tokens per rank generated per micro-batch sample, counts "
        "scaled by {:.3g} (raise options.max_routings_per_step for exact token-level routing)",
        b.generated_per_rank, tokens_per_rank, b.scale));
  }
  return b;
}

exec::RoutingSample count_dispatch(const workloads::RoutingBatch& batch,
                                   const workloads::GatingOutcome& outcome, int slots,
                                   std::span<const int> ep_rank_node, double scale) {
  const int ep = static_cast<int>(ep_rank_node.size());
  const int slots_per_rank = slots / ep;
  std::vector<int64_t> copies(static_cast<size_t>(ep) * slots, 0);
  std::vector<int64_t> per_rank(static_cast<size_t>(ep) * ep, 0);
  std::vector<int64_t> per_node(static_cast<size_t>(ep) * ep, 0);
  // Slot -> EP rank, looked up per copy (an integer division per copy was a
  // tenth of a serving iteration's time).
  std::vector<int> slot_rank(slots);
  for (int slot = 0; slot < slots; ++slot) slot_rank[slot] = slot / slots_per_rank;
  const int k = batch.top_k;
  // The last token that reached each rank and each node: a token's first copy
  // to a rank (or node) is the one counted, in O(1) per copy.
  const int node_count =
      ep_rank_node.empty() ? 0 : *std::max_element(ep_rank_node.begin(), ep_rank_node.end()) + 1;
  std::vector<int64_t> rank_seen(ep, -1), node_seen(node_count, -1);
  for (int64_t t = 0; t < batch.tokens; ++t) {
    const int src = batch.source_rank[t];
    const int src_node = ep_rank_node[src];
    // The cross-node copy of a token is counted at its first rank on each
    // destination node (forwarded inside that node over NVLink).
    // Without branches on the destination (unpredictable, they cost a
    // third of this loop): a copy is new to its rank when the rank has not
    // seen the token; new to its node when it is also the token's first on a
    // remote node, or lands on the token's own node. Marking the node of a
    // copy that was not new, or of the own node, changes no later test.
    for (int c = 0; c < k; ++c) {
      const int32_t slot = outcome.slot[t * k + c];
      if (slot < 0) continue;
      ++copies[src * slots + slot];
      const int dst = slot_rank[slot];
      const int dst_node = ep_rank_node[dst];
      const bool new_rank = rank_seen[dst] != t;
      const bool new_node = (dst_node == src_node) | (node_seen[dst_node] != t);
      rank_seen[dst] = t;
      node_seen[dst_node] = t;
      per_rank[src * ep + dst] += new_rank;
      per_node[src * ep + dst] += new_rank & new_node;
    }
  }
  exec::RoutingSample rs;
  rs.ep = ep;
  rs.local_experts = slots_per_rank;
  rs.pair_tokens.assign(static_cast<size_t>(ep) * ep, 0);
  rs.rank_tokens.assign(static_cast<size_t>(ep) * ep, 0);
  rs.node_tokens.assign(static_cast<size_t>(ep) * ep, 0);
  rs.expert_tokens.assign(slots, 0);
  rs.tokens_in = static_cast<int64_t>(std::llround(batch.tokens * scale));
  auto scaled = [scale](int64_t count) {
    return scale == 1.0 ? count : static_cast<int64_t>(std::llround(count * scale));
  };
  for (int src = 0; src < ep; ++src) {
    for (int slot = 0; slot < slots; ++slot) {
      const int64_t c = copies[src * slots + slot];
      if (!c) continue;
      const int64_t n = scaled(c);
      rs.pair_tokens[static_cast<size_t>(src) * ep + slot_rank[slot]] += n;
      rs.expert_tokens[slot] += n;
      rs.routed += n;
    }
  }
  for (size_t i = 0; i < per_rank.size(); ++i) {
    rs.rank_tokens[i] = scaled(per_rank[i]);
    rs.node_tokens[i] = scaled(per_node[i]);
  }
  rs.dropped = static_cast<int64_t>(std::llround(outcome.dropped * scale));
  return rs;
}

int ep_ranks_per_node(std::span<const int> ep_rank_node) {
  std::map<int, int> ranks_on_node;
  int most = 1;
  for (int node : ep_rank_node) most = std::max(most, ++ranks_on_node[node]);
  return most;
}

int eplb_nodes(std::span<const int> ep_rank_node) {
  const size_t ep = ep_rank_node.size();
  size_t per_node = 0;
  while (per_node < ep && ep_rank_node[per_node] == ep_rank_node[0]) ++per_node;
  if (per_node == 0 || ep % per_node != 0) return 1;
  std::set<int> seen;
  for (size_t first = 0; first < ep; first += per_node) {
    // Each block of per_node ranks is one node, a node no other block holds.
    if (!seen.insert(ep_rank_node[first]).second) return 1;
    for (size_t r = first; r < first + per_node; ++r) {
      if (ep_rank_node[r] != ep_rank_node[first]) return 1;
    }
  }
  return static_cast<int>(ep / per_node);
}

GeneratedLayer generate_layer(const RoutingKey& key, const RoutingBudget& budget,
                              const workloads::RoutingGenerator& generator, int moe_ordinal,
                              int layer) {
  const int ep = key.ep();
  const int experts = key.model.routed_experts;
  const int slots = experts + key.gating.redundant_experts;
  const int ranks_per_node = ep_ranks_per_node(key.ep_rank_node);

  GeneratedLayer out;
  const std::vector<int64_t> tokens(ep, budget.generated_per_rank);
  const std::vector<int64_t> sequences(ep, key.sequences_per_rank);
  workloads::SequenceLayout layout;
  if (static_cast<int>(key.ep_rank_replica.size()) == ep) {
    layout.group_of_source = key.ep_rank_replica;
    layout.sequences_of_source = sequences;
  }
  workloads::RoutingBatch batch;
  workloads::GatingOutcome outcome;
  out.stats.layer = layer;
  out.stats.load.assign(slots, 0);
  for (int step = 0; step < key.steps; ++step) {
    const std::vector<double> popularity = generator.popularity(step, moe_ordinal);
    const workloads::ExpertPlacement place =
        workloads::place_experts(experts, ep, slots - experts, popularity, key.model.router_groups,
                                 eplb_nodes(key.ep_rank_node));
    exec::LayerRouting lr;
    lr.layer = layer;
    for (int sample = 0; sample < budget.samples; ++sample) {
      // Samples of later steps and layers use distinct generator steps.
      generator.generate(step * budget.samples + sample, moe_ordinal, tokens, batch, layout);
      // One stream of re-routing draws per (seed, step, layer, sample).
      const uint64_t stream = key.seed ^ (static_cast<uint64_t>(step) << 40) ^
                              (static_cast<uint64_t>(moe_ordinal) << 20) ^
                              static_cast<uint64_t>(sample);
      workloads::apply_gating(batch, key.gating, place, popularity, ranks_per_node, outcome,
                              stream);
      exec::RoutingSample rs =
          count_dispatch(batch, outcome, slots, key.ep_rank_node, budget.scale);
      for (int slot = 0; slot < slots; ++slot) out.stats.load[slot] += rs.expert_tokens[slot];
      out.stats.dropped += rs.dropped;
      lr.samples.push_back(std::move(rs));
    }
    out.per_step.push_back(std::move(lr));
  }
  return out;
}

RoutingPlan plan_routing(const RoutingKey& key) {
  RoutingPlan plan;
  std::vector<int> moe_layer_index;  // MoE ordinal -> layer (MTP modules' last)
  for (int l = 0; l < key.model.layers + key.model.mtp_layers; ++l) {
    if (key.model.is_moe_layer(l)) moe_layer_index.push_back(l);
  }
  const int moe_layers = static_cast<int>(moe_layer_index.size());
  const int steps = key.steps;
  const RoutingBudget budget =
      routing_budget(key.tokens_per_rank, key.ep(), key.model.top_k, moe_layers, steps,
                     key.routing_samples, key.max_routings_per_step);
  plan.warnings = budget.warnings;
  plan.subsample = budget.subsample;
  const auto generator =
      workloads::make_generator(key.generator, key.model, key.seed, "routing.generator");

  // Every (step, layer) batch has its own random stream, so layers can be
  // generated on several threads and the plan is the same as a serial one.
  // Small plans (sweep points, tests) stay on the calling thread.
  const int gen_layers = budget.generated_layers;
  std::vector<GeneratedLayer> generated(gen_layers);
  const double work = static_cast<double>(key.ep()) * key.tokens_per_rank * key.model.top_k *
                      budget.samples * steps * gen_layers;
  const int threads =
      work < 4e6
          ? 1
          : static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 8));
  parallel_for(generated.size(), threads, [&](size_t j) {
    generated[j] = generate_layer(key, budget, *generator, static_cast<int>(j), moe_layer_index[j]);
  });

  plan.routing.resize(steps);
  plan.layers.resize(moe_layers);
  for (int j = 0; j < moe_layers; ++j) {
    const int l = moe_layer_index[j];
    if (j < gen_layers) {
      plan.layers[j] = std::move(generated[j].stats);
      for (int step = 0; step < steps; ++step) {
        plan.routing[step].push_back(std::move(generated[j].per_step[step]));
      }
      continue;
    }
    // Beyond the budget, layers reuse the generated ones cyclically.
    const int from = j % gen_layers;
    plan.layers[j] = plan.layers[from];
    plan.layers[j].layer = l;
    for (int step = 0; step < steps; ++step) {
      exec::LayerRouting lr = plan.routing[step][from];
      lr.layer = l;
      plan.routing[step].push_back(std::move(lr));
    }
  }
  return plan;
}

std::shared_ptr<const RoutingPlan> cached_routing_plan(const RoutingKey& key) {
  static std::mutex mu;
  static std::vector<std::pair<RoutingKey, std::shared_ptr<const RoutingPlan>>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [k, plan] : cache) {
      if (k == key) return plan;
    }
  }
  auto plan = std::make_shared<const RoutingPlan>(plan_routing(key));
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 64) cache.clear();
  cache.emplace_back(key, plan);
  return plan;
}

}  // namespace moesim::scenario
