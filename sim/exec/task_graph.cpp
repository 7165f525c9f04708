#include "sim/exec/task_graph.h"

#include <algorithm>
#include <bit>
#include <stdexcept>

#include <fmt/format.h>

namespace moesim::exec {

std::string_view category_name(Category c) {
  static constexpr std::string_view kNames[kCategoryCount] = {
      "attention_compute", "dense_compute", "expert_compute",
      "other_compute",     "optimizer",     "framework_overhead",
      "dispatch",          "combine",       "tp_comm",
      "pp_comm",           "dp_comm",       "cp_comm",
      "offload",           "reload"};
  return kNames[static_cast<int>(c)];
}

TaskGraph::TaskGraph(int gpus) : gpus_(gpus), stream_head_(gpus), stream_tail_(gpus) {
  for (auto& h : stream_head_) h.fill(kNoTask);
  for (auto& t : stream_tail_) t.fill(kNoTask);
}

namespace {
TaskId checked_id(size_t n) {
  if (n >= TaskGraph::kNoTask) throw std::length_error("task graph: more than 2^32-1 tasks");
  return static_cast<TaskId>(n);
}
}  // namespace

TaskId TaskGraph::add_compute(int gpu, Category category, SimTime duration, TaskLabel label) {
  const TaskId id = checked_id(tasks_.size());
  tasks_.push_back(Task{duration, static_cast<uint32_t>(gpu), kNoCollective, kNoTask, label,
                        Stream::kCompute, category, 0});
  uint32_t& tail = stream_tail_[gpu][0];
  if (tail == kNoTask) {
    stream_head_[gpu][0] = id;
  } else {
    tasks_[tail].next_in_stream = id;
  }
  tail = id;
  return id;
}

TaskId TaskGraph::add_copy(int gpu, Stream stream, Category category, SimTime duration,
                           TaskLabel label) {
  if (stream != Stream::kHostCopyOut && stream != Stream::kHostCopyIn) {
    throw std::logic_error("TaskGraph::add_copy: host copies go on a host-copy stream");
  }
  const TaskId id = checked_id(tasks_.size());
  tasks_.push_back(Task{duration, static_cast<uint32_t>(gpu), kNoCollective, kNoTask, label, stream,
                        category, 0});
  const int s = static_cast<int>(stream);
  uint32_t& tail = stream_tail_[gpu][s];
  if (tail == kNoTask) {
    stream_head_[gpu][s] = id;
  } else {
    tasks_[tail].next_in_stream = id;
  }
  tail = id;
  return id;
}

CollectiveId TaskGraph::add_collective(uint32_t payload) {
  collectives_.push_back(CollectiveInfo{payload, 0});
  return static_cast<CollectiveId>(collectives_.size() - 1);
}

TaskId TaskGraph::add_comm(int gpu, Stream stream, Category category, CollectiveId collective,
                           TaskLabel label) {
  const TaskId id = checked_id(tasks_.size());
  tasks_.push_back(Task{SimTime::zero(), static_cast<uint32_t>(gpu), collective, kNoTask, label,
                        stream, category, 0});
  ++collectives_[collective].participants;
  if (stream != Stream::kNone) {
    const int s = static_cast<int>(stream);
    uint32_t& tail = stream_tail_[gpu][s];
    if (tail == kNoTask) {
      stream_head_[gpu][s] = id;
    } else {
      tasks_[tail].next_in_stream = id;
    }
    tail = id;
  }
  return id;
}

void TaskGraph::depend(TaskId before, TaskId after) {
  edges_.push_back({before, after});
}

void TaskGraph::set_comm_sms(int gpu_sms, int comm_sms) {
  if (comm_sms <= 0 || comm_sms >= gpu_sms) {
    throw std::logic_error(
        fmt::format("TaskGraph::set_comm_sms: {} communication SMs of {} (need 0 < comm < gpu)",
                    comm_sms, gpu_sms));
  }
  gpu_sms_ = gpu_sms;
  comm_sms_ = comm_sms;
}

void TaskGraph::finalize() {
  if (finalized_) return;
  finalized_ = true;
  const size_t n = tasks_.size();
  // Counting sort of edges by source: successors and dependency counts.
  std::vector<uint32_t> fill;
  reserve_huge(fill, n + 1);
  fill.assign(n + 1, 0);
  reserve_huge(dep_count_, n);
  dep_count_.assign(n, 0);
  for (const auto& e : edges_) {
    ++fill[e[0] + 1];
    ++dep_count_[e[1]];
  }
  for (size_t i = 0; i < n; ++i) fill[i + 1] += fill[i];
  for (size_t i = 0; i < n; ++i) tasks_[i].succ_begin = fill[i];
  reserve_huge(succ_, edges_.size());
  succ_.resize(edges_.size());
  for (const auto& e : edges_) succ_[fill[e[0]]++] = e[1];
  edges_.clear();
  edges_.shrink_to_fit();

  part_begin_.assign(collectives_.size() + 1, 0);
  for (const Task& t : tasks_) {
    if (t.collective != kNoCollective) ++part_begin_[t.collective + 1];
  }
  for (size_t i = 0; i < collectives_.size(); ++i) part_begin_[i + 1] += part_begin_[i];
  reserve_huge(part_, part_begin_.back());
  part_.resize(part_begin_.back());
  std::vector<uint32_t> pfill(part_begin_.begin(), part_begin_.end() - 1);
  for (TaskId id = 0; id < n; ++id) {
    if (tasks_[id].collective != kNoCollective) part_[pfill[tasks_[id].collective]++] = id;
  }
}

std::span<const uint32_t> TaskGraph::successors(TaskId id) const {
  const uint32_t begin = tasks_[id].succ_begin;
  const uint32_t end =
      id + 1 < tasks_.size() ? tasks_[id + 1].succ_begin : static_cast<uint32_t>(succ_.size());
  return {succ_.data() + begin, end - begin};
}

std::span<const TaskId> TaskGraph::participants(CollectiveId id) const {
  return {part_.data() + part_begin_[id], part_begin_[id + 1] - part_begin_[id]};
}

// ---------------------------------------------------------------------------

GraphExecutor::GraphExecutor(Engine& engine, const TaskGraph& graph, bool pipeline_parallel)
    : engine_(engine), graph_(graph), pipeline_parallel_(pipeline_parallel) {
  if (!graph.finalized_) throw std::logic_error("GraphExecutor: graph not finalized");
}

ExecutionResult GraphExecutor::run(CollectiveRunner& runner) {
  runner_ = &runner;
  const size_t n = graph_.size();
  const int gpus = graph_.gpus();
  GpuState initial;
  initial.last_change = engine_.now();
  gpu_state_.assign(gpus, initial);
  stream_next_ = graph_.stream_head_;
  stream_busy_.assign(gpus, {});
  state_ = {};
  reserve_huge(state_, n);
  state_.resize(n);
  for (size_t id = 0; id < n; ++id) state_[id] = {graph_.dep_count_[id], TaskGraph::kNoTask};
  arrived_.assign(graph_.collectives(), 0);
  last_arrival_.assign(graph_.collectives(), TaskGraph::kNoTask);
  result_ = ExecutionResult{};
  result_.per_gpu.assign(gpus, GpuTimeAccount{});
  reserve_huge(result_.task_end, n);
  result_.task_end.assign(n, SimTime::zero());
  result_.collective_start.assign(graph_.collectives(), SimTime::zero());
  comm_takes_sms_ = graph_.comm_sms() > 0;
  if (comm_takes_sms_) {
    reserve_huge(result_.compute_start, n);
    result_.compute_start.assign(n, SimTime::zero());
  }
  finished_ = 0;

  const uint64_t events_before = engine_.events_executed();
  // Stream-less tasks and stream heads with no dependencies start at once.
  for (TaskId id = 0; id < n; ++id) {
    if (state_[id].unmet == 0) try_start(id);
  }
  engine_.run();
  if (finished_ != n) {
    throw std::logic_error(fmt::format(
        "task graph deadlock: {} of {} tasks never ran (dependency cycle or collectives "
        "queued in different orders)",
        n - finished_, n));
  }
  SimTime makespan = SimTime::zero();
  for (int g = 0; g < gpus; ++g) makespan = max(makespan, gpu_state_[g].last_change);
  // Close every GPU's account at the step's end: a GPU that finished early
  // waits for the slowest one.
  for (int g = 0; g < gpus; ++g) {
    result_.per_gpu[g].finish_s = gpu_state_[g].last_change.seconds();
    const double tail = (makespan - gpu_state_[g].last_change).seconds();
    (pipeline_parallel_ ? result_.per_gpu[g].bubble_s : result_.per_gpu[g].idle_s) += tail;
  }
  result_.makespan = makespan;
  result_.events = engine_.events_executed() - events_before;
  reserve_huge(result_.gated_by, n);
  result_.gated_by.resize(n);
  for (size_t id = 0; id < n; ++id) result_.gated_by[id] = state_[id].gated_by;
  state_ = {};
  return std::move(result_);
}

// Charges the time since the GPU's last state change to what it was doing.
void GraphExecutor::account(uint32_t gpu) {
  GpuState& s = gpu_state_[gpu];
  const SimTime now = engine_.now();
  const double dt = (now - s.last_change).seconds();
  s.last_change = now;
  if (dt == 0) return;
  GpuTimeAccount& a = result_.per_gpu[gpu];
  if (s.compute_running >= 0) {
    a.exposed_s[s.compute_running] += dt;
    // The GPU waits for its host during framework overhead: not busy.
    if (s.compute_running != static_cast<int8_t>(Category::kFramework)) a.busy_s += dt;
    for (uint32_t m = s.comm_mask; m != 0; m &= m - 1) a.hidden_s[std::countr_zero(m)] += dt;
    return;
  }
  if (s.comm_mask == 0) {
    (pipeline_parallel_ ? a.bubble_s : a.idle_s) += dt;
    return;
  }
  // Compute idle: the wait is charged to one active communication, the one
  // most directly on the MoE layer's path first. A copy out is never waited
  // for (it is hidden or nothing); a reload comes last.
  static constexpr Category kPriority[] = {
      Category::kDispatch, Category::kCombine, Category::kTpComm, Category::kCpComm,
      Category::kPpComm,   Category::kDpComm,  Category::kReload};
  bool charged = false;
  for (Category c : kPriority) {
    const int ci = static_cast<int>(c);
    if (!((s.comm_mask >> ci) & 1)) continue;
    if (!charged) {
      a.exposed_s[ci] += dt;
      charged = true;
    } else {
      a.hidden_s[ci] += dt;
    }
  }
  if (!charged) (pipeline_parallel_ ? a.bubble_s : a.idle_s) += dt;
}

void GraphExecutor::try_start(TaskId id) {
  const TaskGraph::Task& t = graph_.task(id);
  if (state_[id].unmet != 0) return;
  if (t.stream != Stream::kNone) {
    const int s = static_cast<int>(t.stream);
    if (stream_busy_[t.gpu][s] || stream_next_[t.gpu][s] != id) return;
    stream_busy_[t.gpu][s] = 1;
  }
  if (t.collective == kNoCollective) {
    if (t.stream != Stream::kCompute) {
      start_copy(id, t);
      return;
    }
    account(t.gpu);
    gpu_state_[t.gpu].compute_running = static_cast<int8_t>(t.category);
    if (comm_takes_sms_) {
      start_compute(id, t);
    } else {
      engine_.schedule_after(t.duration, *this, id);
    }
    return;
  }
  // A participant arrives. On a stream, it counts as active communication on
  // its GPU from now on: waiting for late peers inside a collective kernel is
  // part of the collective's cost (the straggler effect). A point-to-point
  // transfer only counts once both sides are there: a pipeline stage waiting
  // for its neighbour is in the pipeline bubble.
  if (t.stream != Stream::kNone) {
    account(t.gpu);
    gpu_state_[t.gpu].comm_started(t.category);
    if (comm_takes_sms_ && t.stream == Stream::kEpComm) ep_comm_changed(t.gpu, +1);
  }
  const CollectiveId c = t.collective;
  last_arrival_[c] = id;
  if (++arrived_[c] == graph_.collective(c).participants) {
    result_.collective_start[c] = engine_.now();
    for (TaskId p : graph_.participants(c)) {
      const TaskGraph::Task& pt = graph_.task(p);
      if (pt.stream != Stream::kNone) continue;
      account(pt.gpu);
      gpu_state_[pt.gpu].comm_started(pt.category);
    }
    runner_->start(*this, c, graph_.collective(c).payload);
  }
}

// Communication SMs. The mechanism is the executor's, not the builder's:
// whether a kernel overlaps an all-to-all, and for how long, is only known as
// the step runs (a dispatch may end halfway through the expert GEMMs beside
// it), so the running kernel's speed changes when EP communication starts or
// stops on its GPU. Each change costs one reschedule of its completion event:
// O(log n), no allocation. Work is counted in full-speed picoseconds; slowed
// progress rounds down and slowed time left rounds up, so a kernel never ends
// early.
namespace {
int64_t slowed_ps(int64_t full_speed_ps, int gpu_sms, int comm_sms) {
  const int64_t share = gpu_sms - comm_sms;
  return (full_speed_ps * gpu_sms + share - 1) / share;
}
}  // namespace

void GraphExecutor::start_compute(TaskId id, const TaskGraph::Task& t) {
  GpuState& s = gpu_state_[t.gpu];
  result_.compute_start[id] = engine_.now();
  // The framework's host work is the GPU waiting, not a kernel: never slowed.
  s.compute_slowed = s.ep_comm_active > 0 && t.category != Category::kFramework;
  s.compute_since = engine_.now();
  s.compute_left_ps = t.duration.ps();
  const int64_t ps = s.compute_slowed
                         ? slowed_ps(s.compute_left_ps, graph_.gpu_sms(), graph_.comm_sms())
                         : s.compute_left_ps;
  s.compute_event = engine_.schedule_after(SimTime::from_ps(ps), *this, id);
}

// A host copy runs on its own engine (the GPU's copy engines), beside
// compute and taking none of its SMs.
void GraphExecutor::start_copy(TaskId id, const TaskGraph::Task& t) {
  account(t.gpu);
  gpu_state_[t.gpu].comm_started(t.category);
  if (comm_takes_sms_) result_.compute_start[id] = engine_.now();
  engine_.schedule_after(t.duration, *this, id);
}

void GraphExecutor::ep_comm_changed(uint32_t gpu, int delta) {
  GpuState& s = gpu_state_[gpu];
  const bool was_active = s.ep_comm_active > 0;
  s.ep_comm_active = static_cast<uint16_t>(s.ep_comm_active + delta);
  const bool active = s.ep_comm_active > 0;
  if (was_active == active || s.compute_running < 0 ||
      s.compute_running == static_cast<int8_t>(Category::kFramework)) {
    return;
  }
  const int gpu_sms = graph_.gpu_sms(), comm_sms = graph_.comm_sms();
  const int64_t elapsed = (engine_.now() - s.compute_since).ps();
  const int64_t done = s.compute_slowed ? elapsed * (gpu_sms - comm_sms) / gpu_sms : elapsed;
  s.compute_left_ps = std::max<int64_t>(0, s.compute_left_ps - done);
  s.compute_since = engine_.now();
  s.compute_slowed = active;
  const int64_t ps = active ? slowed_ps(s.compute_left_ps, gpu_sms, comm_sms) : s.compute_left_ps;
  s.compute_event = engine_.reschedule(s.compute_event, engine_.now() + SimTime::from_ps(ps));
}

void GraphExecutor::on_event(uint64_t task) {
  const TaskId id = static_cast<TaskId>(task);
  const TaskGraph::Task& t = graph_.task(id);
  account(t.gpu);
  if (t.stream == Stream::kCompute) {
    gpu_state_[t.gpu].compute_running = -1;
  } else {
    gpu_state_[t.gpu].comm_ended(t.category);
  }
  finish_task(id);
}

void GraphExecutor::collective_done(CollectiveId id) {
  const auto parts = graph_.participants(id);
  // The last arrival gated the collective; every participant records it.
  const TaskId gater = last_arrival_[id];
  for (TaskId p : parts) {
    const TaskGraph::Task& t = graph_.task(p);
    account(t.gpu);
    gpu_state_[t.gpu].comm_ended(t.category);
    if (comm_takes_sms_ && t.stream == Stream::kEpComm) ep_comm_changed(t.gpu, -1);
    if (p != gater) state_[p].gated_by = gater;
  }
  for (TaskId p : parts) finish_task(p);
}

void GraphExecutor::finish_task(TaskId id) {
  const TaskGraph::Task& t = graph_.task(id);
  result_.task_end[id] = engine_.now();
  ++finished_;
  if (t.stream != Stream::kNone) {
    const int s = static_cast<int>(t.stream);
    stream_busy_[t.gpu][s] = 0;
    stream_next_[t.gpu][s] = t.next_in_stream;
  }
  for (uint32_t succ : graph_.successors(id)) {
    TaskState& st = state_[succ];
    if (--st.unmet == 0) {
      if (st.gated_by == TaskGraph::kNoTask) st.gated_by = id;
      try_start(succ);
    }
  }
  if (t.stream != Stream::kNone && t.next_in_stream != TaskGraph::kNoTask) {
    const TaskId next = t.next_in_stream;
    if (state_[next].unmet == 0) {
      // Its dependencies were met before (or as) the stream freed: the stream
      // gated it.
      state_[next].gated_by = id;
      try_start(next);
    }
  }
}

}  // namespace moesim::exec
