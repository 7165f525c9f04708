#include "sim/core/parallel_for.h"

#include <atomic>
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

namespace moesim {
namespace {

TEST_CASE("parallel_for calls every index exactly once", "[core]") {
  for (int threads : {1, 2, 5}) {
    std::vector<std::atomic<int>> calls(1000);
    parallel_for(calls.size(), threads, [&](size_t i) { ++calls[i]; });
    for (const auto& c : calls) CHECK(c == 1);
  }
  parallel_for(0, 4, [](size_t) { FAIL("no index to call"); });
}

TEST_CASE("parallel_for rethrows the first exception and stops handing out work", "[core]") {
  std::atomic<int> calls{0};
  CHECK_THROWS_WITH(parallel_for(100000, 2,
                                 [&](size_t i) {
                                   ++calls;
                                   if (i == 10) throw std::runtime_error("index 10");
                                 }),
                    "index 10");
  CHECK(calls < 100000);
}

}  // namespace
}  // namespace moesim
