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

class ServingRouting final : public exec::IterationRouting {
 public:
  // `ep_rank_node`: the node of each EP rank; `instance`: which instance
  // routes (instances draw distinct batches); `max_copies`: token copies one
  // iteration generates at most (beyond it tokens are subsampled and counts
  // scaled; subsampled() says so).
  ServingRouting(const workloads::MoeModelConfig& model, const workloads::GatingConfig& gating,
                 std::shared_ptr<const workloads::RoutingGenerator> generator, uint64_t seed,
                 int instance, std::vector<int> ep_rank_node, int samples, int64_t max_copies);

  using exec::IterationRouting::route;
  const std::vector<exec::RoutingSample>& route(uint64_t iteration,
                                                std::span<const int64_t> tokens_per_rank,
                                                const exec::IterationSequences& sequences) override;

  // Per MoE layer (ordinal): token copies per slot and drops, summed over
  // the batches drawn for it.
  const std::vector<LayerLoad>& load() const { return load_; }
  bool subsampled() const { return subsampled_; }

 private:
  const workloads::ExpertPlacement& placement(int moe_layer);

  const workloads::MoeModelConfig& model_;
  workloads::GatingConfig gating_;
  std::shared_ptr<const workloads::RoutingGenerator> generator_;
  uint64_t seed_;
  int instance_;
  std::vector<int> ep_rank_node_;
  int samples_;
  int64_t max_copies_;
  int ranks_per_node_ = 1;
  std::vector<LayerLoad> load_;
  std::vector<std::unique_ptr<workloads::ExpertPlacement>> placements_;
  std::vector<std::vector<double>> popularity_;
  // Buffers of one batch, one set per batch of an iteration (drawn in parallel).
  struct Scratch {
    workloads::RoutingBatch batch;
    workloads::GatingOutcome outcome;
  };

  // Reused across iterations.
  std::vector<exec::RoutingSample> samples_out_;
  std::vector<int64_t> tokens_;
  std::vector<int> layers_;           // per batch of the iteration: its MoE layer
  std::vector<uint64_t> step_index_;  // and its generator step
  std::vector<Scratch> work_;
  bool subsampled_ = false;
};

}  // namespace moesim::scenario
