#include "workloads/routing_stats.h"

#include <algorithm>
#include <cmath>

#include "workloads/gating.h"

namespace moesim::workloads {

RoutingStats::RoutingStats(int experts, int moe_layers, double capacity_factor)
    : experts_(experts), capacity_factor_(capacity_factor), layers_(moe_layers) {
  for (Layer& l : layers_) l.load.assign(experts, 0);
}

void RoutingStats::add(int layer, const RoutingBatch& b) {
  Layer& l = layers_[layer];
  const int64_t copies = b.tokens * b.top_k;
  l.tokens += b.tokens;
  l.routings += copies;
  std::vector<int64_t> in_batch(experts_, 0);
  for (int64_t i = 0; i < copies; ++i) ++in_batch[b.expert[i]];
  const int64_t cap = expert_capacity(capacity_factor_, b.tokens, b.top_k, experts_);
  for (int e = 0; e < experts_; ++e) {
    l.load[e] += in_batch[e];
    l.dropped += std::max<int64_t>(0, in_batch[e] - cap);
  }
}

LoadShape load_shape(const std::vector<int64_t>& load) {
  LoadShape s;
  double sum = 0, sq = 0, mx = 0;
  for (int64_t x : load) {
    sum += x;
    sq += static_cast<double>(x) * x;
    mx = std::max(mx, static_cast<double>(x));
  }
  if (sum <= 0) return s;
  const double n = static_cast<double>(load.size()), mean = sum / n;
  s.max_over_mean = mx / mean;
  s.cv = std::sqrt(std::max(0.0, sq / n - mean * mean)) / mean;
  for (int64_t x : load) {
    if (x > 0) s.entropy_bits -= (x / sum) * std::log2(x / sum);
  }
  return s;
}

Json RoutingStats::to_json() const {
  Json j;
  int64_t tokens = 0, routings = 0, dropped = 0;
  std::vector<int64_t> all(experts_, 0);
  Json per_layer = Json::array();
  double worst = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    tokens = std::max(tokens, l.tokens);
    routings += l.routings;
    dropped += l.dropped;
    for (int e = 0; e < experts_; ++e) all[e] += l.load[e];
    const LoadShape s = load_shape(l.load);
    worst = std::max(worst, s.max_over_mean);
    per_layer.push_back({{"layer", i},
                         {"tokens", l.tokens},
                         {"routings", l.routings},
                         {"max_over_mean_load", s.max_over_mean},
                         {"cv", s.cv},
                         {"entropy_bits", s.entropy_bits},
                         {"drop_rate", l.routings ? double(l.dropped) / l.routings : 0.0},
                         {"load", l.load}});
  }
  const LoadShape s = load_shape(all);
  j["tokens"] = tokens;  // tokens per layer (each token is routed at every MoE layer)
  j["routings"] = routings;
  j["experts"] = experts_;
  j["max_over_mean_load"] = worst;
  j["max_over_mean_load_all_layers"] = s.max_over_mean;
  j["cv"] = s.cv;
  j["entropy_bits"] = s.entropy_bits;
  j["normalized_entropy"] = experts_ > 1 ? s.entropy_bits / std::log2(experts_) : 1.0;
  j["capacity_factor"] = std::isinf(capacity_factor_) ? Json("dropless") : Json(capacity_factor_);
  j["drop_rate"] = routings ? double(dropped) / routings : 0.0;
  j["per_layer"] = per_layer;
  return j;
}

}  // namespace moesim::workloads
