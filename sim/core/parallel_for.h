#pragma once
// The one work-sharing loop of the program (routing plans, sweep and search
// points): a few threads pulling indices from a shared counter.

#include <cstddef>
#include <functional>

namespace moesim {

// Calls fn(i) once for every i in [0, count) on `threads` threads, the calling
// thread included, and returns when all calls have returned. The first
// exception fn throws stops handing out indices and is rethrown here. A call
// made from inside fn runs on the calling thread alone.
void parallel_for(size_t count, int threads, const std::function<void(size_t)>& fn);

}  // namespace moesim
