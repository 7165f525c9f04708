#include "reports/timeline.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

namespace moesim::reports {
namespace {

using exec::Category;
using exec::Stream;
using exec::TaskGraph;
using exec::TaskId;

constexpr const char* kStreamName[exec::kStreamsPerGpu] = {
    "compute", "tp comm",     "ep comm",    "dp comm",
    "cp comm", "offload d2h", "reload h2d", "param gather"};
constexpr const char* kPhase[] = {"fwd", "bwd", "recompute", "step", "wgrad"};

// Track ids within a node's process: GPU-major, streams then transfer lanes.
constexpr int kTracksPerGpu = 16;
constexpr int kMaxLanes = kTracksPerGpu - exec::kStreamsPerGpu;

double us(SimTime t) {
  return static_cast<double>(t.ps()) * 1e-6;
}

std::string slice_name(const TaskGraph::Task& t, int model_layers) {
  std::string name(exec::category_name(t.category));
  const int layer = t.label.layer;
  if (model_layers >= 0 && layer >= model_layers) {
    name = fmt::format("MTP{} {}", layer - model_layers + 1, name);
  } else if (layer >= 0) {
    name = fmt::format("L{} {}", layer, name);
  }
  name += fmt::format(" {}", kPhase[static_cast<int>(t.label.phase)]);
  if (t.label.microbatch >= 0) name += fmt::format(" mb{}", t.label.microbatch);
  if (t.label.chunk > 0) name += fmt::format(" c{}", t.label.chunk);
  return name;
}

}  // namespace

std::string chrome_trace(const exec::StepGraph& step, const exec::ExecutionResult& result,
                         const TimelineOptions& options) {
  const TaskGraph& g = step.graph;
  const int gpus = std::min(g.gpus(), options.max_gpus);
  const int per_node = options.gpus_per_node;
  std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  bool first = true;
  auto emit = [&](const std::string& ev) {
    if (!first) out += ",\n";
    first = false;
    out += ev;
  };
  const int nodes = (gpus + per_node - 1) / per_node;
  for (int n = 0; n < nodes; ++n) {
    emit(fmt::format(R"({{"ph":"M","name":"process_name","pid":{},"args":{{"name":"node {}"}}}})",
                     n, n));
  }
  // Point-to-point transfers may overlap each other on one GPU: each goes to
  // the first lane free at its start.
  std::vector<std::vector<SimTime>> lane_free(gpus);
  std::vector<int> track_of(g.size(), -1);
  std::vector<TaskId> order;
  for (TaskId id = 0; id < g.size(); ++id) {
    if (static_cast<int>(g.task(id).gpu) < gpus) order.push_back(id);
  }
  std::stable_sort(order.begin(), order.end(), [&](TaskId a, TaskId b) {
    return result.task_start(g, a) < result.task_start(g, b);
  });
  std::vector<std::vector<bool>> track_used(gpus, std::vector<bool>(kTracksPerGpu, false));
  for (TaskId id : order) {
    const auto& t = g.task(id);
    const SimTime start = result.task_start(g, id), end = result.task_end[id];
    int track;
    if (t.stream != Stream::kNone) {
      track = static_cast<int>(t.stream);
    } else {
      auto& lanes = lane_free[t.gpu];
      size_t lane = 0;
      while (lane < lanes.size() && lanes[lane] > start) ++lane;
      if (lane == lanes.size()) lanes.push_back(SimTime::zero());
      if (lane >= static_cast<size_t>(kMaxLanes)) continue;  // pathological overlap: dropped
      lanes[lane] = end;
      track = exec::kStreamsPerGpu + static_cast<int>(lane);
    }
    track_used[t.gpu][track] = true;
    track_of[id] = track;
    if (end == start && t.collective == exec::kNoCollective) continue;
    // A kernel slowed by communication taking SMs beside it (TaskGraph::
    // set_comm_sms) says by how much.
    std::string slowed;
    if (t.collective == exec::kNoCollective && end - start > t.duration) {
      slowed = fmt::format(R"(,"slowed_by_comm_sms_us":{:.6f})", us(end - start - t.duration));
    }
    emit(fmt::format(
        R"({{"ph":"X","name":"{}","cat":"{}","pid":{},"tid":{},"ts":{:.6f},"dur":{:.6f},"args":{{"task":{}{}}}}})",
        slice_name(t, options.model_layers), exec::category_name(t.category), t.gpu / per_node,
        t.gpu * kTracksPerGpu + track, us(start), us(end - start), id, slowed));
  }
  for (int gpu = 0; gpu < gpus; ++gpu) {
    for (int track = 0; track < kTracksPerGpu; ++track) {
      if (!track_used[gpu][track]) continue;
      const std::string name =
          track < exec::kStreamsPerGpu
              ? fmt::format("GPU {} {}", gpu, kStreamName[track])
              : fmt::format("GPU {} pp transfer {}", gpu, track - exec::kStreamsPerGpu);
      emit(fmt::format(
          R"({{"ph":"M","name":"thread_name","pid":{},"tid":{},"args":{{"name":"{}"}}}})",
          gpu / per_node, gpu * kTracksPerGpu + track, name));
      emit(fmt::format(
          R"({{"ph":"M","name":"thread_sort_index","pid":{},"tid":{},"args":{{"sort_index":{}}}}})",
          gpu / per_node, gpu * kTracksPerGpu + track, gpu * kTracksPerGpu + track));
    }
  }
  // Flow arrows for dependencies that cross GPUs: the gating task of a
  // collective (its last arrival, on another GPU) to the first task the
  // collective released on each participant's GPU, and pipeline transfers.
  uint64_t flow_id = 0;
  auto arrow = [&](TaskId from, TaskId to) {
    const auto& a = g.task(from);
    const auto& b = g.task(to);
    if (track_of[from] < 0 || track_of[to] < 0) return;
    ++flow_id;
    emit(fmt::format(
        R"({{"ph":"s","id":{},"name":"dep","cat":"dep","pid":{},"tid":{},"ts":{:.6f}}})", flow_id,
        a.gpu / per_node, a.gpu * kTracksPerGpu + track_of[from],
        us(result.task_end[from]) - 1e-6));
    emit(fmt::format(
        R"({{"ph":"f","bp":"e","id":{},"name":"dep","cat":"dep","pid":{},"tid":{},"ts":{:.6f}}})",
        flow_id, b.gpu / per_node, b.gpu * kTracksPerGpu + track_of[to],
        us(result.task_start(g, to))));
  };
  for (TaskId id : order) {
    const auto& t = g.task(id);
    if (t.collective == exec::kNoCollective) continue;
    const TaskId gater = result.gated_by[id];
    if (t.stream == Stream::kNone) {
      // Pipeline transfer: sender side to receiver's next compute.
      for (TaskId s : g.successors(id)) {
        if (g.task(s).gpu != t.gpu) continue;
        for (TaskId p : g.participants(t.collective)) {
          if (g.task(p).gpu != t.gpu) arrow(p, s);
        }
      }
      continue;
    }
    if (t.category != Category::kDispatch || gater == TaskGraph::kNoTask) continue;
    if (g.task(gater).gpu == t.gpu) continue;
    for (TaskId s : g.successors(id)) {
      if (g.task(s).category == Category::kExpert) arrow(gater, s);
    }
  }
  out += "\n]}\n";
  return out;
}

}  // namespace moesim::reports
