#pragma once
// The routing a scenario's steps play: for every step and MoE layer, a few
// token-level routings drawn from the scenario's generator, gated (capacity,
// node limits, replicas) and counted into who-sends-what-to-whom matrices.
//
// plan_routing() runs in three parts, each usable and tested on its own:
//   routing_budget()   how many samples, layers and tokens fit the budget of
//                      options.max_routings_per_step;
//   generate_layer()   one MoE layer's samples for every step;
//   count_dispatch()   one gated batch -> an exec::RoutingSample.
// A plan depends only on its RoutingKey, so sweeps and searches share plans
// across points that differ in anything else (recompute, ZeRO, schedule,
// global batch, network model, ...).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sim/exec/step_inputs.h"
#include "sim/exec/training_step.h"
#include "workloads/gating.h"
#include "workloads/model_config.h"
#include "workloads/routing.h"
#include "workloads/routing_generator.h"

namespace moesim::scenario {

struct Scenario;

// Everything a routing plan depends on, and nothing else.
struct RoutingKey {
  workloads::MoeModelConfig model;
  workloads::GatingConfig gating;
  std::string generator;  // generator spec
  uint64_t seed = 1;
  int64_t tokens_per_rank = 0;  // tokens each EP rank routes per micro-batch
  int steps = 1;
  // The node of each member of an expert-parallel group, in group order
  // (which copies cross the network, and how many EP ranks share a node).
  std::vector<int> ep_rank_node;
  // Which sequences each member's tokens come from (workloads::SequenceLayout):
  // its data-parallel replica, and that replica's micro-batch of sequences
  // (tensor- and context-parallel ranks hold parts of the same ones).
  std::vector<int32_t> ep_rank_replica;
  int64_t sequences_per_rank = 1;
  int routing_samples = 2;
  int64_t max_routings_per_step = 0;

  int ep() const { return static_cast<int>(ep_rank_node.size()); }
  bool operator==(const RoutingKey&) const = default;
};
RoutingKey routing_key(const Scenario& scenario);

// How much of the step's routing is generated token by token.
struct RoutingBudget {
  int samples = 1;                 // distinct routings per MoE layer and step
  int generated_layers = 0;        // the other MoE layers reuse these cyclically
  double subsample = 1;            // tokens represented by each generated token
  int64_t generated_per_rank = 0;  // tokens generated per EP rank and sample
  double scale = 1;                // tokens_per_rank / generated_per_rank
  std::vector<std::string> warnings;
};
// Over budget, first one sample per layer, then only some layers generated
// (the others reuse them: same statistics, fewer distinct draws), and only as
// a last resort fewer tokens with scaled counts (which exaggerates imbalance).
RoutingBudget routing_budget(int64_t tokens_per_rank, int ep, int top_k, int moe_layers, int steps,
                             int samples_wanted, int64_t max_routings_per_step);

// One gated batch counted into a RoutingSample of `ep` ranks x `slots`
// expert slots (slot s on rank s / (slots / ep)), counts scaled by `scale`.
// Besides the per-copy matrix, the node-deduplicated ones: each token once per
// destination rank (rank_tokens) and once per destination node, at its first
// rank there (node_tokens), as hierarchical dispatch sends it.
// The nodes EPLB's hierarchical placement may pack expert groups on: the
// count of nodes when the EP ranks are numbered node by node with as many on
// each, 1 otherwise (the global policy).
int eplb_nodes(std::span<const int> ep_rank_node);
// The most EP ranks any one node holds (node-limited routing's group size is
// that many ranks' slots); 1 for an empty list.
int ep_ranks_per_node(std::span<const int> ep_rank_node);

exec::RoutingSample count_dispatch(const workloads::RoutingBatch& batch,
                                   const workloads::GatingOutcome& outcome, int slots,
                                   std::span<const int> ep_rank_node, double scale);

// Expert load of one MoE layer over every step routed.
struct LayerLoad {
  int layer = 0;              // model layer index
  std::vector<int64_t> load;  // token copies per slot, scaled to the step's token count
  int64_t dropped = 0;
};

// One MoE layer's routing samples for every step: [step] -> its samples.
struct GeneratedLayer {
  LayerLoad stats;
  std::vector<exec::LayerRouting> per_step;
};
GeneratedLayer generate_layer(const RoutingKey& key, const RoutingBudget& budget,
                              const workloads::RoutingGenerator& generator, int moe_ordinal,
                              int layer);

struct RoutingPlan {
  // [step][moe layer]: the model's MoE layers, then its MTP modules' ones
  // (a training step runs both).
  exec::StepRouting routing;
  using LayerStats = LayerLoad;
  std::vector<LayerStats> layers;  // summed over steps
  double subsample = 1;            // tokens represented by each generated token
  std::vector<std::string> warnings;
};

RoutingPlan plan_routing(const RoutingKey& key);

// plan_routing() through a small cache shared by all threads (the most
// recent plans; sweeps and searches reuse them across points).
std::shared_ptr<const RoutingPlan> cached_routing_plan(const RoutingKey& key);

}  // namespace moesim::scenario
