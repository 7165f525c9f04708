// routing_balancedness (the blog's GPU balancedness, mean over max token
// copies per GPU): against the closed form of the generator's popularity, and
// EPLB replicas raising it.
#include <algorithm>
#include <catch2/catch.hpp>
#include <numeric>
#include <vector>

#include "sim/explore/published_serving.h"
#include "workloads/routing_generator.h"

using moesim::Json;
using moesim::explore::routing_balancedness;

namespace {

moesim::workloads::MoeModelConfig top1_model() {
  return moesim::workloads::resolve_model(Json{{"preset", "tiny-moe"}, {"top_k", 1}}, "model");
}

}  // namespace

TEST_CASE("balancedness without EPLB is mean over max of each GPU's popularity") {
  const auto model = top1_model();  // 8 experts, 4 MoE layers, top-1: no redraws
  const char* spec = "zipf:1.2";
  const auto generator = moesim::workloads::make_generator(spec, model, 5, "routing.generator");
  // Two GPUs hold experts 0-3 and 4-7 in order (no EPLB).
  double expected = 0;
  for (int layer = 0; layer < model.moe_layer_count(); ++layer) {
    const std::vector<double> p = generator->popularity(0, layer);
    const double first = std::accumulate(p.begin(), p.begin() + 4, 0.0);
    expected += 0.5 / std::max(first, 1 - first);
  }
  expected /= model.moe_layer_count();
  const double predicted = routing_balancedness(model, spec, 2, 0, 200000, 2, 5);
  CHECK(predicted == Approx(expected).epsilon(0.01));
  CHECK(expected < 0.9);  // skewed enough that the check means something
}

TEST_CASE("uniform routing is balanced and EPLB replicas balance skewed routing") {
  const auto model = top1_model();
  CHECK(routing_balancedness(model, "uniform", 4, 0, 100000, 2, 5) > 0.98);
  const double without = routing_balancedness(model, "zipf:1.2", 4, 0, 100000, 2, 5);
  const double with = routing_balancedness(model, "zipf:1.2", 4, 8, 100000, 2, 5);
  CHECK(without < 0.8);
  CHECK(with > without + 0.1);
  CHECK(with <= 1.0);
}
