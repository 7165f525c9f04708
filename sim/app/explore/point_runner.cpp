#include "sim/app/explore/point_runner.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include <fmt/format.h>

#include "sim/core/parallel_for.h"

namespace moesim::cli {

void run_points(size_t count, int threads, const std::string& what,
                const std::function<void(size_t)>& work) {
  std::atomic<size_t> done{0};
  std::mutex mu;
  const bool tty = isatty(STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  auto progress = [&](size_t finished) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double eta = finished ? elapsed / finished * (count - finished) : 0;
    std::lock_guard<std::mutex> lock(mu);
    if (tty) {
      const int width = 30,
                filled = static_cast<int>(width * finished / std::max<size_t>(1, count));
      std::fprintf(stderr, "\r%s [%s%s] %zu/%zu  %.0fs elapsed, ETA %.0fs ", what.c_str(),
                   std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(),
                   finished, count, elapsed, eta);
      if (finished == count) std::fprintf(stderr, "\n");
    } else {
      std::fprintf(stderr, "%s: %zu/%zu done, %.1fs elapsed, ETA %.1fs\n", what.c_str(), finished,
                   count, elapsed, eta);
    }
  };
  parallel_for(count, threads, [&](size_t i) {
    work(i);
    progress(++done);
  });
}

}  // namespace moesim::cli
