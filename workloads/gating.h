#pragma once
// Gating policies applied to a routing batch, and expert placement.
//
// Token choice: each token keeps its top-k experts subject to a capacity of
// ceil(C x tokens x k / experts) copies per expert (or that many times the
// rank's expert slots per EP rank, "capacity_scope": "ep_rank"); overflow is
// dropped in arrival order or lowest gate weight first (batch-priority
// routing); "dropless" keeps everything. Expert choice: each expert takes the
// capacity's worth of highest-weight copies offered to it (among the tokens'
// top-k candidates). Device- and node-limited routing (DeepSeek-V2/V3) keep a
// token's experts on at most M EP ranks / nodes: the M ranks (nodes) holding
// its highest-weight choices; its other choices are replaced by its next-best
// experts there, drawn in proportion to popularity (DeepSeek's group-limited
// gating; see gating.cpp). The model router's own group limit (n_group /
// topk_group) applies first, the same way over groups of consecutive experts.
// Replication (EPLB) duplicates the hottest experts into spare slots; a
// replicated expert's copies alternate among its replicas.

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "workloads/model_config.h"
#include "workloads/routing.h"

namespace moesim::workloads {

struct GatingConfig {
  enum class Policy { kTokenChoice, kExpertChoice } policy = Policy::kTokenChoice;
  double capacity_factor = std::numeric_limits<double>::infinity();  // inf = dropless
  enum class Drop { kArrival, kScore } drop = Drop::kArrival;
  bool capacity_per_rank = false;
  int device_limit = 0;  // 0 = unlimited
  int node_limit = 0;
  int redundant_experts = 0;  // EPLB replicas beyond one per expert
  // The model router's own group-limited top-k (DeepSeek's n_group /
  // topk_group: `expert_groups` groups of consecutive experts, a token's
  // experts inside its best `expert_group_limit` of them; 0 = no limit). Not
  // gating JSON: with_model_router() copies them from the model.
  int expert_groups = 1, expert_group_limit = 0;
  bool dropless() const { return std::isinf(capacity_factor); }
  bool operator==(const GatingConfig&) const = default;
};

GatingConfig parse_gating(const Json& value, const std::string& path);
// `g` with `model`'s router group limit (expert_groups, expert_group_limit).
GatingConfig with_model_router(GatingConfig g, const MoeModelConfig& model);
Json gating_json(const GatingConfig& g);
// Throws a ConfigError at `path`.device_limit / .node_limit when the limit
// leaves a token fewer than `top_k` expert slots to choose from (M ranks of
// `slots_per_rank` slots, M nodes of `ranks_per_node` such ranks): the
// routing could not keep it.
void check_group_limits(const GatingConfig& g, int top_k, int slots_per_rank, int ranks_per_node,
                        const std::string& path);

// Expert -> slots (replicas) and slot -> EP rank. Slots are numbered rank-major:
// slot s lives on rank s / slots_per_rank.
struct ExpertPlacement {
  int experts = 0, ep = 1, slots = 0;
  std::vector<std::vector<int32_t>> expert_slots;
  std::vector<int32_t> slot_expert;
  int slots_per_rank() const { return slots / ep; }
  int rank_of_slot(int s) const { return s / slots_per_rank(); }
};
// One slot per expert plus `redundant` replicas of the experts with the
// highest expected load, placed greedily on the least-loaded rank (DeepSeek's
// EPLB, eplb.py rebalance_experts). With the model router's `groups` and the
// EP ranks' `nodes` (ranks numbered node by node), where groups % nodes == 0,
// EPLB's hierarchical policy: whole groups to nodes by load first, replicas
// and ranks inside each node, so group-limited routing stays node-local.
// Without redundant experts every expert keeps its own slot, in order.
// REQUIRES: (experts + redundant) % ep == 0 (checked by the caller).
ExpertPlacement place_experts(int experts, int ep, int redundant, std::span<const double> load,
                              int groups = 1, int nodes = 1);

struct GatingOutcome {
  std::vector<int32_t> slot;  // per token copy: the slot it goes to, -1 if dropped
  std::vector<int64_t> dropped_per_expert;
  int64_t routed = 0, dropped = 0;
};

// `popularity`: per-expert expected share (to re-route copies under
// device/node limits). `ranks_per_node`: EP ranks per node. `stream_seed`
// seeds the draws of re-routed copies (one stream per batch).
void apply_gating(const RoutingBatch& batch, const GatingConfig& config,
                  const ExpertPlacement& placement, std::span<const double> popularity,
                  int ranks_per_node, GatingOutcome& out, uint64_t stream_seed = 0);

// Capacity per expert: ceil(C x tokens x k / experts).
int64_t expert_capacity(double capacity_factor, int64_t tokens, int top_k, int experts);

}  // namespace moesim::workloads
