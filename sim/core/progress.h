#pragma once
// How long-running library work (sweeps, searches) says how far it is: a
// callback with the items done so far and the total. The command line turns
// it into a status line; libraries never print.

#include <cstddef>
#include <functional>

namespace moesim {

// Called after each finished item, from worker threads, never concurrently.
// May be empty (no progress wanted).
using ProgressFn = std::function<void(size_t done, size_t total)>;

// parallel_for (parallel_for.h) that calls `progress` after every item.
void parallel_for_with_progress(size_t count, int threads, const ProgressFn& progress,
                                const std::function<void(size_t)>& fn);

}  // namespace moesim
