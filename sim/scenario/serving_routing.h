#pragma once
// Routing for serving iterations: every iteration draws its own token-level
// routing from the scenario's generator for the tokens each EP rank holds in
// that iteration, gated as in training (capacity, node limits, EPLB
// replicas), and counted into exec::RoutingSample matrices.
//
// Iteration i draws `samples` batches; batch s plays MoE layer
// (i x samples + s) mod moe_layers of the generator (each layer has its own
// popularity), and the model's MoE layers take the batches in turn. Over many
// iterations every layer is drawn equally often; the expert load the report
// shows is summed per layer over the batches drawn for it.
//
// An iteration's batches are drawn on several threads when they are large
// (each has its own random streams: the result is the serial loop's).
//
// EPLB placement (gating.redundant_experts) is computed once per layer from
// the generator's expected load, as an EPLB run on recorded statistics
// (SGLang --init-expert-location) places replicas.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sim/exec/inference_costs.h"
#include "sim/scenario/routing_plan.h"
#include "workloads/gating.h"
#include "workloads/model_config.h"
#include "workloads/routing_generator.h"

namespace moesim::scenario {

// What the routings of every instance of one run share, so a fleet of
// thousands of replicas holds one copy of it: each MoE layer's expected
// popularity, its EPLB placement per EP layout (instances of one layout place
// alike), the expert load the report shows (summed over instances), and the
// buffers of one iteration's draw (the serving event loop asks one instance
// at a time). Outlives its ServingRoutings; not for concurrent route() calls.
class ServingRoutingPool {
 public:
  // `samples`: batches drawn per iteration; `max_copies`: token copies one
  // iteration generates at most (beyond it tokens are subsampled and counts
  // scaled; subsampled() says so).
  ServingRoutingPool(const workloads::MoeModelConfig& model, const workloads::GatingConfig& gating,
                     std::shared_ptr<const workloads::RoutingGenerator> generator, uint64_t seed,
                     int samples, int64_t max_copies);

  // Per MoE layer (ordinal): token copies per slot and drops, summed over
  // the batches every instance drew for it.
  const std::vector<LayerLoad>& load() const { return load_; }
  bool subsampled() const { return subsampled_; }

 private:
  friend class ServingRouting;
  // Placements depend on the EP size and on how many nodes EPLB packs
  // groups on (eplb_nodes), not on which nodes.
  struct Layout {
    int ep = 0, nodes = 0;
    std::vector<std::unique_ptr<workloads::ExpertPlacement>> placements;  // per MoE layer
  };
  size_t layout_index(std::span<const int> ep_rank_node);
  const workloads::ExpertPlacement& placement(size_t layout, int moe_layer);

  const workloads::MoeModelConfig& model_;
  workloads::GatingConfig gating_;
  std::shared_ptr<const workloads::RoutingGenerator> generator_;
  uint64_t seed_;
  int samples_;
  int64_t max_copies_;
  std::vector<LayerLoad> load_;
  std::vector<std::vector<double>> popularity_;  // per MoE layer, built on first use
  std::vector<Layout> layouts_;
  bool subsampled_ = false;
  // Buffers of one batch, one set per batch of an iteration (drawn in parallel).
  struct Scratch {
    workloads::RoutingBatch batch;
    workloads::GatingOutcome outcome;
  };
  // Reused across iterations and instances.
  std::vector<exec::RoutingSample> samples_out_;
  std::vector<int64_t> tokens_;
  std::vector<int> layers_;           // per batch of the iteration: its MoE layer
  std::vector<uint64_t> step_index_;  // and its generator step
  std::vector<Scratch> work_;
};

// One instance's routing, drawn through its pool.
class ServingRouting final : public exec::IterationRouting {
 public:
  // `ep_rank_node`: the node of each EP rank; `instance`: which instance
  // routes (instances draw distinct batches).
  ServingRouting(ServingRoutingPool& pool, int instance, std::vector<int> ep_rank_node);

  // The samples live in the pool until its next route() of any instance.
  using exec::IterationRouting::route;
  const std::vector<exec::RoutingSample>& route(uint64_t iteration,
                                                std::span<const int64_t> tokens_per_rank,
                                                const exec::IterationSequences& sequences) override;

 private:
  ServingRoutingPool& pool_;
  int instance_;
  std::vector<int> ep_rank_node_;
  int ranks_per_node_;
  size_t layout_;
};

}  // namespace moesim::scenario
