#include "sim/exec/training_step.h"

#include <algorithm>
#include <set>

#include "sim/engine/engine.h"
#include "sim/exec/step_collectives.h"

namespace moesim::exec {

CriticalPath critical_path(const TaskGraph& graph, const ExecutionResult& result) {
  CriticalPath path;
  if (graph.size() == 0) return path;
  TaskId at = 0;
  for (TaskId id = 1; id < graph.size(); ++id) {
    if (result.task_end[id] > result.task_end[at]) at = id;
  }
  std::vector<CriticalSegment> reversed;
  std::set<int> gpus;
  std::vector<double> expert_by_gpu(graph.gpus(), 0.0);
  while (at != TaskGraph::kNoTask) {
    const auto& t = graph.task(at);
    const double s = (result.task_end[at] - result.task_start(graph, at)).seconds();
    const int gpu = static_cast<int>(t.gpu);
    path.seconds_by_category[static_cast<int>(t.category)] += s;
    if (t.category == Category::kExpert) expert_by_gpu[gpu] += s;
    gpus.insert(gpu);
    if (!reversed.empty() && reversed.back().gpu == gpu && reversed.back().category == t.category) {
      reversed.back().seconds += s;
      ++reversed.back().tasks;
    } else {
      reversed.push_back({gpu, t.category, s, 1});
    }
    at = result.gated_by[at];
  }
  path.segments.assign(reversed.rbegin(), reversed.rend());
  path.gpus_visited = static_cast<int>(gpus.size());
  const auto best = std::max_element(expert_by_gpu.begin(), expert_by_gpu.end());
  if (*best > 0) {
    path.expert_compute_gpu = static_cast<int>(best - expert_by_gpu.begin());
    path.expert_compute_gpu_seconds = *best;
  }
  return path;
}

RoutedCopies routed_copies_per_gpu(const StepRouting& routing) {
  RoutedCopies out;
  double total = 0, count = 0;
  for (const auto& step : routing) {
    for (const LayerRouting& lr : step) {
      for (const RoutingSample& rs : lr.samples) {
        for (int r = 0; r < rs.ep; ++r) {
          int64_t sum = 0;
          for (int e = 0; e < rs.local_experts; ++e)
            sum += rs.expert_tokens[r * rs.local_experts + e];
          out.max = std::max(out.max, static_cast<double>(sum));
          total += static_cast<double>(sum);
          ++count;
        }
      }
    }
  }
  out.mean = count > 0 ? total / count : 0;
  return out;
}

double dropped_expert_flops_per_token(const ModelShape& model, const StepRouting& routing) {
  // Each MoE layer's share of offered copies that capacity dropped, over its
  // samples and steps; a dropped copy skips one routed expert's 2 x params
  // forward FLOPs.
  double dropped_copies_per_token = 0;
  if (routing.empty()) return 0;
  for (size_t layer = 0; layer < routing.front().size(); ++layer) {
    double routed = 0, dropped = 0;
    for (const auto& step : routing) {
      for (const RoutingSample& rs : step[layer].samples) {
        routed += static_cast<double>(rs.routed);
        dropped += static_cast<double>(rs.dropped);
      }
    }
    if (routed + dropped > 0)
      dropped_copies_per_token += model.top_k * dropped / (routed + dropped);
  }
  return dropped_copies_per_token * 2 * model.expert_params;
}

TrainingResult simulate_training(const TrainingStepSetup& setup, const StepRouting& routing,
                                 const HardwareCosts& hardware, const ProgressFn& progress) {
  TrainingResult out;
  const ParallelConfig& p = setup.parallel;
  const double tokens_per_step =
      static_cast<double>(setup.workload.global_batch) * setup.workload.seq_len;
  out.model_flops_per_step =
      3 *
      (setup.model.forward_flops_per_token - dropped_expert_flops_per_token(setup.model, routing)) *
      tokens_per_step;
  double total = 0;
  for (size_t s = 0; s < routing.size(); ++s) {
    StepGraph step =
        build_training_step(setup.model, p, setup.workload, routing[s], *hardware.compute,
                            setup.framework, setup.gpu_sms, setup.host_link_bytes_per_s);
    Engine engine;
    GraphExecutor executor(engine, step.graph, p.pp > 1);
    const std::unique_ptr<coll::CollectiveTimer> timer = hardware.collectives(engine);
    StepCollectives collectives(step, *timer, p.a2a_algo, setup.collective_algo);
    StepOutcome outcome;
    outcome.execution = executor.run(collectives);
    outcome.algorithms = timer->algorithms();
    outcome.step_time_s = outcome.execution.makespan.seconds();
    outcome.critical_path = critical_path(step.graph, outcome.execution);
    outcome.tasks = step.graph.size();
    outcome.collectives = step.graph.collectives();
    outcome.events = outcome.execution.events;
    total += outcome.step_time_s;
    // Only the last step's per-task times are kept (for the timeline).
    if (s + 1 < routing.size()) {
      outcome.execution.task_end = {};
      outcome.execution.collective_start = {};
      outcome.execution.compute_start = {};
      outcome.execution.gated_by = {};
    } else {
      out.last_graph = std::move(step);
    }
    out.steps.push_back(std::move(outcome));
    if (progress) progress(s + 1, routing.size());
  }
  out.mean_step_time_s = routing.empty() ? 0 : total / routing.size();
  return out;
}

}  // namespace moesim::exec
