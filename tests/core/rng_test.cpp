#include <cmath>

#include <catch2/catch.hpp>

#include "sim/core/rng.h"

using moesim::Rng;

TEST_CASE("rng streams are deterministic and independent", "[rng]") {
  Rng a(42, 0), b(42, 0), c(42, 1), d(43, 0);
  bool differs_stream = false, differs_seed = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next_u64();
    CHECK(x == b.next_u64());
    differs_stream |= x != c.next_u64();
    differs_seed |= x != d.next_u64();
  }
  CHECK(differs_stream);
  CHECK(differs_seed);
}

TEST_CASE("rng distributions have the right moments", "[rng]") {
  Rng r(7);
  const int n = 400'000;
  double sum_u = 0, sum_e = 0, sum_g = 0, sum_n = 0, sum_n2 = 0;
  uint64_t counts[10] = {};
  for (int i = 0; i < n; ++i) {
    sum_u += r.uniform();
    sum_e += r.exponential(3.0);
    sum_g += r.gamma(0.5);
    const double z = r.normal();
    sum_n += z;
    sum_n2 += z * z;
    ++counts[r.below(10)];
  }
  CHECK(sum_u / n == Approx(0.5).margin(0.005));
  CHECK(sum_e / n == Approx(3.0).epsilon(0.01));
  CHECK(sum_g / n == Approx(0.5).epsilon(0.02));
  CHECK(sum_n / n == Approx(0.0).margin(0.01));
  CHECK(sum_n2 / n == Approx(1.0).epsilon(0.01));
  for (uint64_t c : counts) CHECK(std::abs(static_cast<double>(c) - n / 10.0) < 0.02 * n / 10.0);
}
