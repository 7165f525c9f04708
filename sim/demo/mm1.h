#pragma once
// An M/M/1 queue on the engine: Poisson arrivals, one exponential server, FIFO.
//
// It is the engine's reference model: its mean time in system has the closed
// form 1/(mu - lambda) and it must obey Little's law (L = lambda * W), so it
// checks the engine end to end. `moesim run --demo mm1` runs it.

#include <cstdint>
#include <vector>

#include "sim/core/rng.h"
#include "sim/engine/engine.h"

namespace moesim {

struct MM1Config {
  double arrival_rate_per_s = 0.8e6;  // lambda
  double service_rate_per_s = 1.0e6;  // mu
  uint64_t customers = 1'000'000;
  uint64_t seed = 1;
};

struct MM1Result {
  uint64_t customers_served = 0;
  uint64_t events = 0;
  double simulated_time_s = 0;
  double mean_time_in_system_s = 0;      // W, measured
  double mean_number_in_system = 0;      // L, time-average, measured
  double throughput_per_s = 0;           // served / simulated time
  double analytic_time_in_system_s = 0;  // 1 / (mu - lambda)
  double utilization = 0;                // busy time / simulated time
};

// Throws moesim::Error unless 0 < lambda < mu and customers > 0.
MM1Result simulate_mm1(const MM1Config& config);

}  // namespace moesim
