#include <catch2/catch.hpp>

#include "sim/core/error.h"
#include "sim/demo/mm1.h"

using moesim::MM1Config;
using moesim::simulate_mm1;

TEST_CASE("M/M/1 with 10^6 customers matches 1/(mu - lambda) within 2% and Little's law",
          "[engine][mm1]") {
  for (const double rho : {0.5, 0.7}) {
    MM1Config c;
    c.service_rate_per_s = 1e6;
    c.arrival_rate_per_s = rho * c.service_rate_per_s;
    c.customers = 1'000'000;
    c.seed = 2024;
    const auto r = simulate_mm1(c);
    INFO("rho = " << rho);
    CHECK(r.customers_served == c.customers);
    CHECK(r.analytic_time_in_system_s ==
          Approx(1.0 / (c.service_rate_per_s - c.arrival_rate_per_s)));
    CHECK(r.mean_time_in_system_s == Approx(r.analytic_time_in_system_s).epsilon(0.02));
    // Little's law L = lambda * W, with lambda the measured throughput.
    CHECK(r.mean_number_in_system ==
          Approx(r.throughput_per_s * r.mean_time_in_system_s).epsilon(0.005));
    CHECK(r.utilization == Approx(rho).epsilon(0.01));
    CHECK(r.events == 2 * c.customers);
  }
}

TEST_CASE("M/M/1 is deterministic per seed", "[engine][mm1][determinism]") {
  MM1Config c;
  c.customers = 20'000;
  const auto a = simulate_mm1(c);
  const auto b = simulate_mm1(c);
  CHECK(a.mean_time_in_system_s == b.mean_time_in_system_s);
  CHECK(a.simulated_time_s == b.simulated_time_s);
  c.seed = 2;
  CHECK(simulate_mm1(c).mean_time_in_system_s != a.mean_time_in_system_s);
}

TEST_CASE("M/M/1 rejects an unstable queue", "[engine][mm1]") {
  MM1Config c;
  c.arrival_rate_per_s = 2e6;
  c.service_rate_per_s = 1e6;
  CHECK_THROWS_AS(simulate_mm1(c), moesim::Error);
}
