#include "sim/core/parallel_for.h"

#include "sim/core/progress.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace moesim {

namespace {
// Set on the threads of a running parallel_for: a nested call (a serving
// run's routing inside a sweep's parallel points) runs on its own thread
// rather than multiplying the threads past the cores.
thread_local bool inside_parallel_for = false;
}  // namespace

void parallel_for(size_t count, int threads, const std::function<void(size_t)>& fn) {
  if (inside_parallel_for) threads = 1;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::exception_ptr error;
  auto loop = [&] {
    const bool was_inside = inside_parallel_for;
    inside_parallel_for = true;
    struct Restore {
      bool value;
      ~Restore() { inside_parallel_for = value; }
    } restore{was_inside};
    for (;;) {
      const size_t i = next++;
      if (i >= count) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        next = count;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  const size_t threads_used = std::min(count, static_cast<size_t>(std::max(1, threads)));
  for (size_t t = 1; t < threads_used; ++t) pool.emplace_back(loop);
  loop();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace moesim

namespace moesim {

void parallel_for_with_progress(size_t count, int threads, const ProgressFn& progress,
                                const std::function<void(size_t)>& fn) {
  if (!progress) return parallel_for(count, threads, fn);
  std::mutex mu;
  size_t done = 0;
  parallel_for(count, threads, [&](size_t i) {
    fn(i);
    std::lock_guard<std::mutex> lock(mu);
    progress(++done, count);
  });
}

}  // namespace moesim
