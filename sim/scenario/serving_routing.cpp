#include "sim/scenario/serving_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>

#include "sim/core/parallel_for.h"

namespace moesim::scenario {

ServingRouting::ServingRouting(const workloads::MoeModelConfig& model,
                               const workloads::GatingConfig& gating,
                               std::shared_ptr<const workloads::RoutingGenerator> generator,
                               uint64_t seed, int instance, std::vector<int> ep_rank_node,
                               int samples, int64_t max_copies)
    : model_(model),
      gating_(gating),
      generator_(std::move(generator)),
      seed_(seed),
      instance_(instance),
      ep_rank_node_(std::move(ep_rank_node)),
      samples_(samples),
      max_copies_(max_copies),
      ranks_per_node_(ep_ranks_per_node(ep_rank_node_)) {
  const int moe_layers = model_.moe_layer_count();
  const int slots = model_.routed_experts + gating_.redundant_experts;
  load_.resize(moe_layers);
  int ordinal = 0;
  for (int l = 0; l < model_.layers; ++l) {
    if (!model_.is_moe_layer(l)) continue;
    load_[ordinal].layer = l;
    load_[ordinal++].load.assign(slots, 0);
  }
  placements_.resize(moe_layers);
  popularity_.resize(moe_layers);
}

const workloads::ExpertPlacement& ServingRouting::placement(int moe_layer) {
  if (!placements_[moe_layer]) {
    popularity_[moe_layer] = generator_->popularity(0, moe_layer);
    placements_[moe_layer] = std::make_unique<workloads::ExpertPlacement>(workloads::place_experts(
        model_.routed_experts, static_cast<int>(ep_rank_node_.size()), gating_.redundant_experts,
        popularity_[moe_layer], model_.router_groups, eplb_nodes(ep_rank_node_)));
  }
  return *placements_[moe_layer];
}

const std::vector<exec::RoutingSample>& ServingRouting::route(
    uint64_t iteration, std::span<const int64_t> tokens_per_rank,
    const exec::IterationSequences& sequences) {
  const int moe_layers = static_cast<int>(load_.size());
  samples_out_.clear();
  if (moe_layers == 0) return samples_out_;
  int64_t total = 0;
  for (int64_t t : tokens_per_rank) total += t;
  // Over the budget, every rank's tokens are thinned by the same factor.
  double scale = 1;
  if (total * model_.top_k > max_copies_) {
    scale = static_cast<double>(total * model_.top_k) / static_cast<double>(max_copies_);
    subsampled_ = true;
  }
  tokens_.resize(tokens_per_rank.size());
  for (size_t r = 0; r < tokens_per_rank.size(); ++r) {
    tokens_[r] = static_cast<int64_t>(std::llround(tokens_per_rank[r] / scale));
  }
  const int slots = model_.routed_experts + gating_.redundant_experts;
  layers_.resize(samples_);
  step_index_.resize(samples_);
  for (int s = 0; s < samples_; ++s) {
    const uint64_t draw = iteration * static_cast<uint64_t>(samples_) + s;
    layers_[s] = static_cast<int>(draw % static_cast<uint64_t>(moe_layers));
    // Generator steps are ints: instances take disjoint runs of them (for the
    // first million draws per layer, then they wrap).
    step_index_[s] = draw / static_cast<uint64_t>(moe_layers) + instance_ * 1000003ull;
    placement(layers_[s]);  // built here, read-only below
  }
  // Each batch has its own random streams, so the batches of an iteration
  // are drawn on several threads with the result of a serial loop. Below
  // kParallelCopies per batch they stay on this thread: drawing, gating and
  // counting take up to 26-31 ns of CPU per copy (bench inference: 17-20 s
  // of CPU in all for 2,178 iterations of 294,912 copies, most of it
  // routing), so a batch of 65,536 takes about 2 ms, far above what starting
  // a thread costs.
  constexpr int64_t kParallelCopies = 1 << 16;
  const int64_t copies = std::accumulate(tokens_.begin(), tokens_.end(), int64_t{0}) * model_.top_k;
  const int threads = copies < kParallelCopies
                          ? 1
                          : std::min(samples_, static_cast<int>(std::clamp<unsigned>(
                                                   std::thread::hardware_concurrency(), 1, 8)));
  samples_out_.resize(samples_);
  work_.resize(samples_);
  parallel_for(samples_, threads, [&](size_t s) {
    const int layer = layers_[s];
    Scratch& w = work_[s];
    generator_->generate(
        static_cast<int>(step_index_[s] % (1u << 30)), layer, tokens_, w.batch,
        workloads::SequenceLayout{sequences.replica_of_rank, sequences.sequences_of_rank});
    workloads::apply_gating(
        w.batch, gating_, *placements_[layer], popularity_[layer], ranks_per_node_, w.outcome,
        seed_ ^ (step_index_[s] * 0x9E3779B97F4A7C15ull) ^ static_cast<uint64_t>(layer));
    samples_out_[s] = count_dispatch(w.batch, w.outcome, slots, ep_rank_node_, scale);
  });
  for (int s = 0; s < samples_; ++s) {
    LayerLoad& load = load_[layers_[s]];
    const exec::RoutingSample& rs = samples_out_[s];
    for (int slot = 0; slot < slots; ++slot) load.load[slot] += rs.expert_tokens[slot];
    load.dropped += rs.dropped;
  }
  return samples_out_;
}

}  // namespace moesim::scenario
