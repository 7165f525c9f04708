#pragma once
// Realism statistics of routing: per-expert load, max/mean load ratio,
// coefficient of variation, entropy, and the drop rate a capacity factor
// would cause (token choice, drops in arrival order, per batch).

#include <cstdint>
#include <vector>

#include "sim/core/config.h"
#include "workloads/routing.h"

namespace moesim::workloads {

class RoutingStats {
 public:
  // capacity_factor: +inf for dropless.
  RoutingStats(int experts, int moe_layers, double capacity_factor);
  void add(int layer, const RoutingBatch& batch);
  // {tokens, routings, max_over_mean_load, cv, entropy_bits, normalized_entropy,
  //  drop_rate, capacity_factor, per_layer: [...], load (all layers)}
  Json to_json() const;

  struct Layer {
    std::vector<int64_t> load;
    int64_t tokens = 0, routings = 0, dropped = 0;
  };
  const Layer& layer(int l) const { return layers_[l]; }

 private:
  int experts_;
  double capacity_factor_;
  std::vector<Layer> layers_;
};

// max/mean, coefficient of variation and entropy (bits) of a load vector.
struct LoadShape {
  double max_over_mean = 0, cv = 0, entropy_bits = 0;
};
LoadShape load_shape(const std::vector<int64_t>& load);

}  // namespace moesim::workloads
