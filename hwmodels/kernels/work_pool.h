#pragma once
// The kernel's thread pool. Unlike an OpenMP parallel region, run() returns
// as soon as every task is done, not when every thread has checked in: on a
// small shared machine a worker that is waiting for a core then costs nothing
// (the caller takes its tasks), where an OpenMP barrier waits a whole
// scheduler time slice (~8 ms measured on 2 busy cores) per region.

#include <cstdint>
#include <functional>

namespace moesim::kern {

// Runs fn(0..tasks-1) on the calling thread and the pool's workers; returns
// when all have finished. Tasks must be independent. Not reentrant.
void parallel_tasks(int64_t tasks, const std::function<void(int64_t)>& fn);

// Threads used (the caller included); default: hardware threads.
int pool_threads();
void set_pool_threads(int threads);

}  // namespace moesim::kern
