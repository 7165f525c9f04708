#pragma once
// Progress of long commands (sweep, search) on stderr, suited to where
// stderr goes:
//  - a terminal: one status line (bar, count, elapsed, ETA) rewritten in
//    place, at most ten times a second, ended by a newline when all is done;
//  - a file or pipe (logs, CI): a plain line each time the work crosses
//    another 10% or 10 s have passed since the last line, so a log gets
//    about a dozen lines per batch however many points it has.
// A display may stay quiet for its first seconds, so that work which ends
// sooner (most single runs) prints nothing; work of one unit (a one-step
// training run, a one-point sweep) shows nothing at all.

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "sim/core/progress.h"

namespace moesim::cli {

// The display behind progress_printer. Thread-safe.
class ProgressDisplay {
 public:
  // `terminal`: whether stderr is a terminal (isatty), which picks the style;
  // nothing is shown before `quiet_s` seconds have passed.
  ProgressDisplay(std::string what, bool terminal, double quiet_s = 0);
  // Reports that `finished` of `count` units are done.
  void update(size_t finished, size_t count);

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_;
  bool terminal_;
  double quiet_s_;
  Clock::time_point start_, last_shown_;
  size_t last_tenth_ = 0;  // tenths of the work done at the last plain line
  bool shown_done_ = false;
  std::mutex mu_;
};

// A ProgressFn showing "<what> ..." on stderr after `quiet_s` seconds; empty
// `what` shows nothing.
ProgressFn progress_printer(const std::string& what, double quiet_s = 0);

}  // namespace moesim::cli
