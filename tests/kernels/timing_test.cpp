// The calibration's timing on a shared machine: cases interleaved round by
// round (not each case's repetitions back to back), the fastest sample as the
// estimate, the spread reported, and memory-bounded batches.

#include <chrono>
#include <functional>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "hwmodels/kernels/calibration.h"

using namespace moesim::kern;

TEST_CASE("time_interleaved alternates the cases: one warm-up each, then round by round") {
  std::vector<int> order;
  std::vector<std::function<void()>> cases;
  for (int i = 0; i < 3; ++i) cases.emplace_back([&order, i] { order.push_back(i); });
  const std::vector<TimedCase> timed = time_interleaved(cases, 2, 0.0);
  CHECK(order == std::vector<int>{0, 1, 2, 0, 1, 2, 0, 1, 2});
  REQUIRE(timed.size() == 3);
  for (const TimedCase& t : timed) {
    CHECK(t.calls == 1);
    CHECK(t.min_s <= t.median_s);
    CHECK(t.spread() >= 0);
  }
}

TEST_CASE("time_interleaved keeps the fastest sample and reports how far the median was") {
  // Round 1 is slowed (as if another process held the core), rounds 2-3 are not.
  int call = 0;
  const std::vector<std::function<void()>> cases = {[&] {
    const int n = call++;
    std::this_thread::sleep_for(std::chrono::milliseconds(n == 1 ? 40 : 10));
  }};
  const TimedCase t = time_interleaved(cases, 3, 0.0)[0];
  CHECK(t.min_s >= 0.010);
  CHECK(t.min_s < 0.030);  // not the disturbed round
  CHECK(t.median_s < 0.030);
  // Sample length: a case shorter than the target is called several times per sample.
  call = 0;
  const std::vector<std::function<void()>> quick = {[&] { ++call; }};
  const TimedCase q = time_interleaved(quick, 2, 1e-3)[0];
  CHECK(q.calls > 1);
  CHECK(call == 1 + 2 * q.calls);
}

TEST_CASE("batches_under: consecutive batches within the budget, oversized cases alone") {
  const std::vector<double> bytes = {4, 4, 4, 10, 1, 0, 3};
  const auto batches = batches_under(bytes, 8);
  CHECK(batches == std::vector<std::pair<size_t, size_t>>{{0, 2}, {2, 3}, {3, 4}, {4, 7}});
  CHECK(batches_under(std::vector<double>{}, 8).empty());
  CHECK(batches_under(bytes, 100) == std::vector<std::pair<size_t, size_t>>{{0, 7}});
}
