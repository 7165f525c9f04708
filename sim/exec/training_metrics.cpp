#include "sim/exec/training_metrics.h"

namespace moesim::exec {
namespace {

TimeBreakdown mean_breakdown(const TrainingResult& res, int gpus) {
  TimeBreakdown b;
  for (const auto& s : res.steps) {
    for (const auto& a : s.execution.per_gpu) {
      for (int c = 0; c < kCategoryCount; ++c) {
        b.exposed_s[c] += a.exposed_s[c];
        b.hidden_s[c] += a.hidden_s[c];
      }
      b.pipeline_bubble_s += a.bubble_s;
      b.idle_s += a.idle_s;
    }
  }
  const double n = static_cast<double>(gpus) * res.steps.size();
  for (int c = 0; c < kCategoryCount; ++c) {
    b.exposed_s[c] /= n;
    b.hidden_s[c] /= n;
  }
  b.pipeline_bubble_s /= n;
  b.idle_s /= n;
  return b;
}

// The category with the most exposed time; the pipeline bubble wins over it
// when larger ("idle" only when nothing at all was exposed).
std::string bottleneck_of(const TimeBreakdown& b) {
  std::string name = "idle";
  double worst = -1;
  for (int c = 0; c < kCategoryCount; ++c) {
    if (b.exposed_s[c] > worst) {
      worst = b.exposed_s[c];
      name = category_name(static_cast<Category>(c));
    }
  }
  if (b.pipeline_bubble_s > worst) name = "pipeline_bubble";
  return name;
}

}  // namespace

bool category_in_use(Category c, const ParallelConfig& parallel) {
  switch (c) {
    case Category::kCpComm:
      return parallel.cp > 1;
    case Category::kOffload:
    case Category::kReload:
      return parallel.offload_modules != 0;
    default:
      return true;
  }
}

TrainingMetrics training_metrics(const TrainingStepSetup& setup, const TrainingResult& res) {
  TrainingMetrics m;
  const int gpus = setup.parallel.gpus();
  m.tokens_per_step = static_cast<double>(setup.workload.global_batch) * setup.workload.seq_len;
  m.step_time_s = res.mean_step_time_s;
  for (const auto& s : res.steps) m.step_times_s.push_back(s.step_time_s);
  m.tokens_per_s = m.tokens_per_step / m.step_time_s;
  m.tokens_per_s_per_gpu = m.tokens_per_step / m.step_time_s / gpus;
  m.model_flops_per_step = res.model_flops_per_step;
  m.model_tflops_per_gpu = res.model_flops_per_step / m.step_time_s / gpus / 1e12;
  m.mfu = res.model_flops_per_step / (m.step_time_s * gpus * setup.peak_flops_per_gpu);
  m.breakdown = mean_breakdown(res, gpus);
  m.bottleneck = bottleneck_of(m.breakdown);

  const StepOutcome& last = res.steps.back();
  m.critical_path = last.critical_path;
  const auto& routed = res.last_graph.expert_tokens_per_gpu;
  for (int g = 0; g < gpus; ++g) {
    const GpuTimeAccount& a = last.execution.per_gpu[g];
    GpuSummary row;
    row.gpu = g;
    row.node = g / setup.gpus_per_node;
    row.busy_s = a.busy_s;
    row.idle_s = last.step_time_s - a.busy_s;
    row.finish_s = a.finish_s;
    row.expert_token_copies = g < static_cast<int>(routed.size()) ? routed[g] : 0;
    m.per_gpu.push_back(row);
  }
  m.tasks = last.tasks;
  m.collectives = last.collectives;
  m.events = last.events;
  m.algorithms = last.algorithms;
  return m;
}

}  // namespace moesim::exec
