#include "sim/core/parallel_for.h"

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
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

TEST_CASE("a parallel_for inside another runs on its caller's thread", "[core]") {
  // Each outer index records the threads its inner loop ran on: only its own.
  std::vector<std::vector<std::thread::id>> seen(8);
  parallel_for(seen.size(), 2, [&](size_t i) {
    std::vector<std::thread::id> ids(64);
    parallel_for(ids.size(), 4, [&](size_t j) { ids[j] = std::this_thread::get_id(); });
    seen[i] = ids;
    for (const std::thread::id& id : ids) CHECK(id == std::this_thread::get_id());
  });
  // And a loop after the outer one is parallel again.
  std::vector<std::thread::id> after(256);
  std::atomic<int> started{0};
  parallel_for(after.size(), 2, [&](size_t j) {
    // The first two indices wait for each other (10 s at most, so a serial
    // loop fails rather than hangs), so two threads must run them.
    if (j < 2) {
      ++started;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (started < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
    }
    after[j] = std::this_thread::get_id();
  });
  CHECK(after[0] != after[1]);
}

TEST_CASE("parallel_for rethrows the first exception and stops handing out work", "[core]") {
  // Indices after the throwing one wait for the throw, then take 100 us each,
  // so a loop that kept handing out work would need 10 s to run them all; one
  // that stops hands out a few more at most (those taken before the catch).
  std::atomic<int> calls{0};
  std::atomic<bool> thrown{false};
  CHECK_THROWS_WITH(parallel_for(100000, 2,
                                 [&](size_t i) {
                                   ++calls;
                                   if (i == 10) {
                                     thrown = true;
                                     throw std::runtime_error("index 10");
                                   }
                                   if (i < 10) return;
                                   while (!thrown) std::this_thread::yield();
                                   std::this_thread::sleep_for(std::chrono::microseconds(100));
                                 }),
                    "index 10");
  CHECK(calls < 1000);
}

}  // namespace
}  // namespace moesim
