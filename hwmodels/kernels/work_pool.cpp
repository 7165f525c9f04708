#include "hwmodels/kernels/work_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace moesim::kern {
namespace {

struct Job {
  std::function<void(int64_t)> fn;
  int64_t tasks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  void work() {
    for (int64_t i; (i = next.fetch_add(1)) < tasks;) {
      fn(i);
      done.fetch_add(1, std::memory_order_release);
    }
  }
};

class Pool {
 public:
  explicit Pool(int threads) { resize(threads); }
  ~Pool() { stop(); }

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int threads) {
    stop();
    stopping_ = false;
    for (int i = 1; i < std::max(threads, 1); ++i) workers_.emplace_back([this] { loop(); });
  }

  void run(int64_t tasks, const std::function<void(int64_t)>& fn) {
    if (tasks <= 0) return;
    if (workers_.empty() || tasks == 1) {
      for (int64_t i = 0; i < tasks; ++i) fn(i);
      return;
    }
    auto job = std::make_shared<Job>();
    job->fn = fn;
    job->tasks = tasks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = job;
      ++generation_;
    }
    cv_.notify_all();
    job->work();
    while (job->done.load(std::memory_order_acquire) < tasks) std::this_thread::yield();
  }

 private:
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        job = job_;
      }
      job->work();  // a late worker finds the tasks taken and goes back to sleep
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::shared_ptr<Job> job_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

Pool& pool() {
  static Pool p(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return p;
}

}  // namespace

void parallel_tasks(int64_t tasks, const std::function<void(int64_t)>& fn) {
  pool().run(tasks, fn);
}
int pool_threads() {
  return pool().threads();
}
void set_pool_threads(int threads) {
  if (threads != pool().threads()) pool().resize(threads);
}

}  // namespace moesim::kern
