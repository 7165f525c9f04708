#include "sim/app/explore/point_runner.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

namespace moesim::cli {

ProgressFn progress_printer(const std::string& what) {
  if (what.empty()) return {};
  const bool tty = isatty(STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  return [=](size_t finished, size_t count) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double eta = finished ? elapsed / finished * (count - finished) : 0;
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
}

}  // namespace moesim::cli
