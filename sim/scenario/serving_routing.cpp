#include "sim/scenario/serving_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>

#include "sim/core/parallel_for.h"

namespace moesim::scenario {

ServingRoutingPool::ServingRoutingPool(const workloads::MoeModelConfig& model,
                                       const workloads::GatingConfig& gating,
                                       std::shared_ptr<const workloads::RoutingGenerator> generator,
                                       uint64_t seed, int samples, int64_t max_copies)
    : model_(model),
      gating_(gating),
      generator_(std::move(generator)),
      seed_(seed),
      samples_(samples),
      max_copies_(max_copies) {
  const int moe_layers = model_.moe_layer_count();
  const int slots = model_.routed_experts + gating_.redundant_experts;
  load_.resize(moe_layers);
  int ordinal = 0;
  for (int l = 0; l < model_.layers; ++l) {
    if (!model_.is_moe_layer(l)) continue;
    load_[ordinal].layer = l;
    load_[ordinal++].load.assign(slots, 0);
  }
  popularity_.resize(moe_layers);
}

size_t ServingRoutingPool::layout_index(std::span<const int> ep_rank_node) {
  const int ep = static_cast<int>(ep_rank_node.size()), nodes = eplb_nodes(ep_rank_node);
  for (size_t i = 0; i < layouts_.size(); ++i) {
    if (layouts_[i].ep == ep && layouts_[i].nodes == nodes) return i;
  }
  layouts_.push_back({ep, nodes, {}});
  layouts_.back().placements.resize(load_.size());
  return layouts_.size() - 1;
}

const workloads::ExpertPlacement& ServingRoutingPool::placement(size_t layout, int moe_layer) {
  if (popularity_[moe_layer].empty()) popularity_[moe_layer] = generator_->popularity(0, moe_layer);
  Layout& l = layouts_[layout];
  if (!l.placements[moe_layer]) {
    l.placements[moe_layer] = std::make_unique<workloads::ExpertPlacement>(
        workloads::place_experts(model_.routed_experts, l.ep, gating_.redundant_experts,
                                 popularity_[moe_layer], model_.router_groups, l.nodes));
  }
  return *l.placements[moe_layer];
}

ServingRouting::ServingRouting(ServingRoutingPool& pool, int instance,
                               std::vector<int> ep_rank_node)
    : pool_(pool),
      instance_(instance),
      ep_rank_node_(std::move(ep_rank_node)),
      ranks_per_node_(ep_ranks_per_node(ep_rank_node_)),
      layout_(pool.layout_index(ep_rank_node_)) {}

const std::vector<exec::RoutingSample>& ServingRouting::route(
    uint64_t iteration, std::span<const int64_t> tokens_per_rank,
    const exec::IterationSequences& sequences) {
  ServingRoutingPool& p = pool_;
  const int moe_layers = static_cast<int>(p.load_.size());
  p.samples_out_.clear();
  if (moe_layers == 0) return p.samples_out_;
  int64_t total = 0;
  for (int64_t t : tokens_per_rank) total += t;
  // Over the budget, every rank's tokens are thinned by the same factor.
  double scale = 1;
  if (total * p.model_.top_k > p.max_copies_) {
    scale = static_cast<double>(total * p.model_.top_k) / static_cast<double>(p.max_copies_);
    p.subsampled_ = true;
  }
  p.tokens_.resize(tokens_per_rank.size());
  for (size_t r = 0; r < tokens_per_rank.size(); ++r) {
    p.tokens_[r] = static_cast<int64_t>(std::llround(tokens_per_rank[r] / scale));
  }
  const int slots = p.model_.routed_experts + p.gating_.redundant_experts;
  p.layers_.resize(p.samples_);
  p.step_index_.resize(p.samples_);
  for (int s = 0; s < p.samples_; ++s) {
    const uint64_t draw = iteration * static_cast<uint64_t>(p.samples_) + s;
    p.layers_[s] = static_cast<int>(draw % static_cast<uint64_t>(moe_layers));
    // Generator steps are ints: instances take disjoint runs of them (for the
    // first million draws per layer, then they wrap).
    p.step_index_[s] = draw / static_cast<uint64_t>(moe_layers) + instance_ * 1000003ull;
    p.placement(layout_, p.layers_[s]);  // built here, read-only below
  }
  // Each batch has its own random streams, so the batches of an iteration
  // are drawn on several threads with the result of a serial loop. Below
  // kParallelCopies per batch they stay on this thread: drawing, gating and
  // counting take up to 26-31 ns of CPU per copy (bench inference: 17-20 s
  // of CPU in all for 2,178 iterations of 294,912 copies, most of it
  // routing), so a batch of 65,536 takes about 2 ms, far above what starting
  // a thread costs.
  constexpr int64_t kParallelCopies = 1 << 16;
  const int64_t copies =
      std::accumulate(p.tokens_.begin(), p.tokens_.end(), int64_t{0}) * p.model_.top_k;
  const int threads = copies < kParallelCopies
                          ? 1
                          : std::min(p.samples_, static_cast<int>(std::clamp<unsigned>(
                                                     std::thread::hardware_concurrency(), 1, 8)));
  p.samples_out_.resize(p.samples_);
  p.work_.resize(p.samples_);
  parallel_for(p.samples_, threads, [&](size_t s) {
    const int layer = p.layers_[s];
    ServingRoutingPool::Scratch& w = p.work_[s];
    p.generator_->generate(
        static_cast<int>(p.step_index_[s] % (1u << 30)), layer, p.tokens_, w.batch,
        workloads::SequenceLayout{sequences.replica_of_rank, sequences.sequences_of_rank});
    workloads::apply_gating(
        w.batch, p.gating_, *p.layouts_[layout_].placements[layer], p.popularity_[layer],
        ranks_per_node_, w.outcome,
        p.seed_ ^ (p.step_index_[s] * 0x9E3779B97F4A7C15ull) ^ static_cast<uint64_t>(layer));
    p.samples_out_[s] = count_dispatch(w.batch, w.outcome, slots, ep_rank_node_, scale);
  });
  for (int s = 0; s < p.samples_; ++s) {
    LayerLoad& load = p.load_[p.layers_[s]];
    const exec::RoutingSample& rs = p.samples_out_[s];
    for (int slot = 0; slot < slots; ++slot) load.load[slot] += rs.expert_tokens[slot];
    load.dropped += rs.dropped;
  }
  return p.samples_out_;
}

}  // namespace moesim::scenario
