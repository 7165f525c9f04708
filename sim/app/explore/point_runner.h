#pragma once
// Runs many scenario points on a thread pool with a progress display: a bar
// with ETA on a terminal, plain lines otherwise.

#include <functional>
#include <string>

namespace moesim::cli {

// Calls work(i) for i in [0, count) on `threads` threads; `label(i)` names a
// point in progress lines. Exceptions from work() are the caller's to catch.
void run_points(size_t count, int threads, const std::string& what,
                const std::function<void(size_t)>& work);

}  // namespace moesim::cli
