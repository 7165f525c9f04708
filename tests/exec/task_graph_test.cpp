#include "sim/exec/task_graph.h"

#include <catch2/catch.hpp>

#include "sim/engine/engine.h"

namespace moesim::exec {
namespace {

// Every collective takes a fixed time.
class FixedRunner : public CollectiveRunner, private EventHandler {
 public:
  FixedRunner(Engine& e, SimTime d) : engine_(e), duration_(d) {}
  void start(GraphExecutor& ex, CollectiveId id, uint32_t) override {
    ex_ = &ex;
    ++started;
    engine_.schedule_after(duration_, *this, id);
  }
  int started = 0;

 private:
  void on_event(uint64_t id) override { ex_->collective_done(static_cast<CollectiveId>(id)); }
  Engine& engine_;
  SimTime duration_;
  GraphExecutor* ex_ = nullptr;
};

const SimTime kMs = SimTime::from_ms(1);

TEST_CASE("a collective waits for its slowest participant and ends on all together",
          "[exec][graph]") {
  TaskGraph g(2);
  const TaskId a = g.add_compute(0, Category::kExpert, kMs, {});
  const TaskId b = g.add_compute(1, Category::kExpert, SimTime::from_ms(3), {});
  const CollectiveId c = g.add_collective(0);
  const TaskId ca = g.add_comm(0, Stream::kEpComm, Category::kCombine, c, {});
  const TaskId cb = g.add_comm(1, Stream::kEpComm, Category::kCombine, c, {});
  g.depend(a, ca);
  g.depend(b, cb);
  g.finalize();
  Engine engine;
  GraphExecutor ex(engine, g, false);
  FixedRunner runner(engine, kMs);
  const ExecutionResult r = ex.run(runner);
  CHECK(r.makespan == SimTime::from_ms(4));
  CHECK(r.task_end[ca] == SimTime::from_ms(4));
  CHECK(r.task_end[cb] == SimTime::from_ms(4));
  // GPU 0 waited 2 ms for GPU 1, then 1 ms of transfer: all exposed combine.
  const int combine = static_cast<int>(Category::kCombine);
  const int expert = static_cast<int>(Category::kExpert);
  CHECK(r.per_gpu[0].exposed_s[combine] == Approx(3e-3));
  CHECK(r.per_gpu[0].exposed_s[expert] == Approx(1e-3));
  CHECK(r.per_gpu[1].exposed_s[combine] == Approx(1e-3));
  // Every GPU's accounted time adds up to the makespan.
  for (const auto& acc : r.per_gpu) {
    double sum = acc.bubble_s + acc.idle_s;
    for (double x : acc.exposed_s) sum += x;
    CHECK(sum == Approx(4e-3));
  }
  // The straggler (GPU 1's compute) is on the critical path.
  CHECK(r.gated_by[ca] == cb);
  CHECK(r.gated_by[cb] == b);
  CHECK(runner.started == 1);
}

TEST_CASE("communication shorter than the compute it overlaps is fully hidden", "[exec][graph]") {
  TaskGraph g(1);
  const TaskId head = g.add_compute(0, Category::kOther, kMs, {});
  const CollectiveId c = g.add_collective(0);
  const TaskId comm = g.add_comm(0, Stream::kEpComm, Category::kDispatch, c, {});
  g.depend(head, comm);
  // Independent compute that runs while the transfer is in flight.
  g.add_compute(0, Category::kDense, SimTime::from_ms(5), {});
  const TaskId tail = g.add_compute(0, Category::kExpert, kMs, {});
  g.depend(comm, tail);
  g.finalize();
  Engine engine;
  GraphExecutor ex(engine, g, false);
  FixedRunner runner(engine, SimTime::from_ms(2));
  const ExecutionResult r = ex.run(runner);
  CHECK(r.makespan == SimTime::from_ms(7));
  const int dispatch = static_cast<int>(Category::kDispatch);
  CHECK(r.per_gpu[0].exposed_s[dispatch] == 0);
  CHECK(r.per_gpu[0].hidden_s[dispatch] == Approx(2e-3));
}

// The same graph with communication taking 20 of 132 SMs: the 5 ms kernel
// runs at 112/132 of its speed for the 2 ms the dispatch is in flight, so it
// ends 2 x 20/132 ms late; the 1 ms kernels, which overlap nothing, do not.
TEST_CASE("communication SMs slow the compute they overlap, and only while they overlap",
          "[exec][graph]") {
  TaskGraph g(1);
  const TaskId head = g.add_compute(0, Category::kOther, kMs, {});
  const CollectiveId c = g.add_collective(0);
  const TaskId comm = g.add_comm(0, Stream::kEpComm, Category::kDispatch, c, {});
  g.depend(head, comm);
  const TaskId beside = g.add_compute(0, Category::kDense, SimTime::from_ms(5), {});
  const TaskId tail = g.add_compute(0, Category::kExpert, kMs, {});
  g.depend(comm, tail);
  g.set_comm_sms(132, 20);
  g.finalize();
  Engine engine;
  GraphExecutor ex(engine, g, false);
  FixedRunner runner(engine, SimTime::from_ms(2));
  const ExecutionResult r = ex.run(runner);
  const double late_s = 2e-3 * 20 / 132;
  CHECK(r.task_start(g, beside).seconds() == Approx(1e-3));
  CHECK(r.task_end[beside].seconds() == Approx(6e-3 + late_s).margin(1e-12));
  CHECK(r.makespan.seconds() == Approx(7e-3 + late_s).margin(1e-12));
  // Time is charged as it passed: the slowed kernel's whole span is compute.
  const int dense = static_cast<int>(Category::kDense);
  CHECK(r.per_gpu[0].exposed_s[dense] == Approx(5e-3 + late_s).margin(1e-12));
  CHECK(r.per_gpu[0].hidden_s[static_cast<int>(Category::kDispatch)] == Approx(2e-3));
  CHECK((r.task_end[tail] - r.task_start(g, tail)) == kMs);
}

// A kernel that starts while communication runs and outlasts it: slowed for
// the overlap, full speed after. A 3 ms all-to-all starts at 0 beside 1 ms of
// host framework time (Category::kFramework: not a kernel, never slowed);
// the 4 ms kernel after it does 2 x 112/132 ms of work by 3 ms and the rest at
// full speed: it ends at 1 + 4 + 2 x 20/132 ms.
TEST_CASE("a kernel outlasting the communication speeds up when it ends; host waits never slow",
          "[exec][graph]") {
  TaskGraph g(1);
  const CollectiveId c = g.add_collective(0);
  g.add_comm(0, Stream::kEpComm, Category::kCombine, c, {});
  const TaskId host = g.add_compute(0, Category::kFramework, kMs, {});
  const TaskId kernel = g.add_compute(0, Category::kAttention, SimTime::from_ms(4), {});
  g.set_comm_sms(132, 20);
  g.finalize();
  Engine engine;
  GraphExecutor ex(engine, g, false);
  FixedRunner runner(engine, SimTime::from_ms(3));
  const ExecutionResult r = ex.run(runner);
  CHECK(r.task_end[host] == kMs);
  // 1 ms host, then 2 ms slowed (2 x 112/132 ms of work), then full speed.
  CHECK(r.task_end[kernel].seconds() == Approx(5e-3 + 2e-3 * 20 / 132).margin(1e-12));
}

TEST_CASE("collectives queued in different orders are reported, not hung", "[exec][graph]") {
  TaskGraph g(2);
  const CollectiveId x = g.add_collective(0), y = g.add_collective(1);
  g.add_comm(0, Stream::kEpComm, Category::kDispatch, x, {});
  g.add_comm(0, Stream::kEpComm, Category::kDispatch, y, {});
  g.add_comm(1, Stream::kEpComm, Category::kDispatch, y, {});
  g.add_comm(1, Stream::kEpComm, Category::kDispatch, x, {});
  g.finalize();
  Engine engine;
  GraphExecutor ex(engine, g, false);
  FixedRunner runner(engine, kMs);
  CHECK_THROWS_WITH(ex.run(runner), Catch::Contains("deadlock"));
}

}  // namespace
}  // namespace moesim::exec
