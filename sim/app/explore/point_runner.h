#pragma once
// Runs many scenario points on a thread pool with a progress display suited
// to where stderr goes:
//  - a terminal: one status line (bar, count, elapsed, ETA) rewritten in
//    place, at most ten times a second, ended by a newline when all is done;
//  - a file or pipe (logs, CI): a plain line each time the work crosses
//    another 10% or 10 s have passed since the last line, so a log gets
//    about a dozen lines per batch however many points it has.

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

namespace moesim::cli {

// Calls work(i) for i in [0, count) on `threads` threads and shows progress
// named `what` on stderr ("" shows nothing). Exceptions from work() are the
// caller's to catch.
void run_points(size_t count, int threads, const std::string& what,
                const std::function<void(size_t)>& work);

// The progress display of run_points, usable alone. Thread-safe.
class ProgressDisplay {
 public:
  // `terminal`: whether stderr is a terminal (isatty), which picks the style.
  ProgressDisplay(std::string what, size_t count, bool terminal);
  // Reports that `finished` of the count units are done.
  void update(size_t finished);

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_;
  size_t count_;
  bool terminal_;
  Clock::time_point start_, last_shown_;
  size_t last_tenth_ = 0;  // tenths of the work done at the last plain line
  bool shown_done_ = false;
  std::mutex mu_;
};

}  // namespace moesim::cli
