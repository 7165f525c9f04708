// The reference MoE layer against the naive triple-loop reference: forward
// across shapes (8..256 experts, top-1..top-8, zero-token experts, skew,
// capacity drops, shared experts) and the expert FFN backward.

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

#include <catch2/catch.hpp>

#include "hwmodels/kernels/moe_layer.h"
#include "hwmodels/kernels/work_pool.h"
#include "sim/core/error.h"

using namespace moesim::kern;

namespace {

// Norm-wise relative error ||a - b|| / ||b||, and the worst element relative
// to the largest reference magnitude.
struct Err {
  double norm, max;
};
Err rel_error(std::span<const float> got, std::span<const float> ref) {
  double num = 0, den = 0, worst = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (got[i] - double(ref[i])) * (got[i] - double(ref[i]));
    den += double(ref[i]) * ref[i];
    worst = std::max(worst, std::abs(got[i] - double(ref[i])));
    scale = std::max(scale, std::abs(double(ref[i])));
  }
  return {std::sqrt(num / den), worst / scale};
}

MoeShape shape(int64_t tokens, int64_t hidden, int64_t ffn, int64_t experts, int64_t k,
               int64_t shared = 0, double cf = 0) {
  MoeShape s;
  s.tokens = tokens;
  s.hidden = hidden;
  s.ffn = ffn;
  s.experts = experts;
  s.top_k = k;
  s.shared_experts = shared;
  s.capacity_factor = cf;
  return s;
}

void check_forward(const MoeShape& s, double zipf, bool own_router = false) {
  const MoeWeights w = random_weights(s, 11);
  const auto x = random_matrix(s.tokens, s.hidden, 1.0f, 12);
  const Routing r = synthetic_routing(s, zipf, 13);
  std::vector<float> got(x.size()), ref(x.size());
  MoeLayer layer(s, w);
  layer.forward(x, got, own_router ? nullptr : &r);
  if (own_router) {
    reference_forward(s, w, x, ref, &layer.last_router_choice());
    // The naive router (double logits) must pick the same experts.
    std::vector<float> ref_own(x.size());
    reference_forward(s, w, x, ref_own);
    const Err e2 = rel_error(got, ref_own);
    CHECK(e2.norm <= 1e-4);
  } else {
    reference_forward(s, w, x, ref, &r);
  }
  const Err e = rel_error(got, ref);
  INFO("experts=" << s.experts << " top_k=" << s.top_k << " zipf=" << zipf << " norm=" << e.norm
                  << " max=" << e.max);
  CHECK(e.norm <= 1e-4);
  CHECK(e.max <= 1e-4);
}

}  // namespace

TEST_CASE("forward matches the naive reference: top-1 and top-8, 8 to 256 experts") {
  check_forward(shape(64, 48, 32, 8, 1), 0.0);
  check_forward(shape(64, 48, 32, 8, 8), 0.0);
  check_forward(shape(80, 32, 16, 64, 8), 0.0);
  check_forward(shape(70, 32, 16, 256, 8), 0.0);
  check_forward(shape(50, 40, 24, 256, 1), 0.0);
}

TEST_CASE("forward matches the reference with skewed routing and empty experts") {
  const MoeShape s = shape(60, 32, 16, 128, 2);
  const Routing r = synthetic_routing(s, 2.0, 13);
  const auto load = tokens_per_expert(s, r);
  // 120 assignments over 128 experts: many experts get no token at all.
  CHECK(std::count(load.begin(), load.end(), 0) > 20);
  check_forward(s, 2.0);
  check_forward(shape(40, 32, 16, 16, 4), 1.2);
}

TEST_CASE("capacity dropping: the reference and the kernel drop the same assignments") {
  const MoeShape s = shape(128, 32, 16, 8, 2, 0, 1.0);
  const Routing r = synthetic_routing(s, 1.5, 13);
  const auto load = tokens_per_expert(s, r);
  const int64_t cap = 128 * 2 / 8;  // ceil(1.0 * tokens * k / experts)
  CHECK(*std::max_element(load.begin(), load.end()) == cap);
  CHECK(std::accumulate(load.begin(), load.end(), int64_t{0}) < 256);  // some dropped
  check_forward(s, 1.5);
}

TEST_CASE("shared experts and the layer's own router match the reference") {
  check_forward(shape(40, 32, 16, 16, 2, 2), 0.0, /*own_router=*/true);
  MoeShape s = shape(40, 32, 16, 16, 4, 1);
  s.normalize_top_k = false;
  check_forward(s, 0.0, /*own_router=*/true);
}

TEST_CASE("forward is deterministic and independent of the thread count") {
  const MoeShape s = shape(256, 64, 64, 16, 4, 1);
  const MoeWeights w = random_weights(s, 1);
  const auto x = random_matrix(s.tokens, s.hidden, 1.0f, 2);
  const Routing r = synthetic_routing(s, 1.0, 3);
  std::vector<float> a(x.size()), b(x.size());
  const int threads = kernel_threads();
  set_kernel_threads(1);
  MoeLayer(s, w).forward(x, a, &r);
  set_kernel_threads(std::max(2, threads));
  MoeLayer(s, w).forward(x, b, &r);
  set_kernel_threads(threads);
  CHECK(rel_error(a, b).norm <= 1e-6);
}

TEST_CASE("synthetic routing: deterministic, distinct experts, weights sum to one") {
  const MoeShape s = shape(500, 8, 8, 32, 4);
  const Routing a = synthetic_routing(s, 1.0, 7), b = synthetic_routing(s, 1.0, 7);
  CHECK(a.expert == b.expert);
  CHECK(a.weight == b.weight);
  CHECK(synthetic_routing(s, 1.0, 8).expert != a.expert);
  for (int64_t t = 0; t < s.tokens; ++t) {
    std::vector<int32_t> e(a.expert.begin() + t * 4, a.expert.begin() + t * 4 + 4);
    std::sort(e.begin(), e.end());
    CHECK(std::adjacent_find(e.begin(), e.end()) == e.end());
    CHECK(std::accumulate(a.weight.begin() + t * 4, a.weight.begin() + t * 4 + 4, 0.0) ==
          Approx(1.0).epsilon(1e-6));
  }
  // Without capacity every assignment lands somewhere (conservation).
  const auto load = tokens_per_expert(s, a);
  CHECK(std::accumulate(load.begin(), load.end(), int64_t{0}) == 2000);
  // Zipf skew concentrates load: the hottest expert is far above the mean.
  const auto skew = tokens_per_expert(s, synthetic_routing(s, 1.5, 7));
  const auto flat = tokens_per_expert(s, synthetic_routing(s, 0.0, 7));
  CHECK(*std::max_element(skew.begin(), skew.end()) >
        *std::max_element(flat.begin(), flat.end()) + 50);
}

TEST_CASE("expert FFN backward matches the naive reference") {
  for (auto [m, h, f] : {std::tuple{1, 16, 8}, std::tuple{37, 48, 24}, std::tuple{64, 32, 64}}) {
    const auto x = random_matrix(m, h, 1.0f, 1);
    const auto wgu = random_matrix(h, 2 * f, 0.3f, 2);
    const auto wd = random_matrix(f, h, 0.3f, 3);
    const auto dy = random_matrix(m, h, 1.0f, 4);
    const FfnGrads got = expert_ffn_backward(m, h, f, x, wgu, wd, dy);
    const FfnGrads ref = reference_ffn_backward(m, h, f, x, wgu, wd, dy);
    INFO("m=" << m);
    CHECK(rel_error(got.dx, ref.dx).norm <= 1e-4);
    CHECK(rel_error(got.dw_gate_up, ref.dw_gate_up).norm <= 1e-4);
    CHECK(rel_error(got.dw_down, ref.dw_down).norm <= 1e-4);
  }
}

TEST_CASE("expert FFN backward agrees with finite differences of the forward") {
  const int64_t m = 3, h = 6, f = 4;
  const auto x = random_matrix(m, h, 1.0f, 5);
  auto wgu = random_matrix(h, 2 * f, 0.5f, 6);
  const auto wd = random_matrix(f, h, 0.5f, 7);
  const auto dy = random_matrix(m, h, 1.0f, 8);
  const FfnGrads g = reference_ffn_backward(m, h, f, x, wgu, wd, dy);
  // L = sum(dy * y); dL/dW by central differences in double via the naive forward.
  auto loss = [&](const std::vector<float>& w) {
    const auto y = expert_ffn_forward(m, h, f, x, w, wd);
    double l = 0;
    for (size_t i = 0; i < y.size(); ++i) l += double(dy[i]) * y[i];
    return l;
  };
  for (size_t i : {size_t{0}, size_t{5}, size_t{13}, size_t{40}}) {
    auto plus = wgu, minus = wgu;
    plus[i] += 1e-2f;
    minus[i] -= 1e-2f;
    const double fd = (loss(plus) - loss(minus)) / (double(plus[i]) - minus[i]);
    CHECK(g.dw_gate_up[i] == Approx(fd).epsilon(2e-2).margin(1e-3));
  }
}

TEST_CASE("bad shapes and routings are one-line errors") {
  CHECK_THROWS_WITH(validate_shape(shape(8, 8, 8, 4, 5)),
                    Catch::Contains("top_k = 5: must be in [1, experts]"));
  CHECK_THROWS_WITH(validate_shape(shape(8, 0, 8, 4, 1)), Catch::Contains("hidden = 0"));
  const MoeShape s = shape(4, 8, 8, 4, 1);
  Routing r = synthetic_routing(s, 0.0, 1);
  r.expert[2] = 9;
  CHECK_THROWS_WITH(tokens_per_expert(s, r), Catch::Contains("expert[2] = 9 outside [0, 4)"));
  CHECK_THROWS_AS(synthetic_routing(s, -1.0, 1), moesim::Error);
}

TEST_CASE("work pool runs every task exactly once") {
  std::vector<int> hits(1000, 0);
  parallel_tasks(1000, [&](int64_t i) { hits[i] += 1; });
  CHECK(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }));
  parallel_tasks(0, [&](int64_t) { FAIL("no task expected"); });
}
