#include "reports/training_report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace moesim::reports {
namespace {

using exec::Category;
using exec::kCategoryCount;

std::string seconds_key(Category c) {
  return std::string(exec::category_name(c)) + "_s";
}

OrderedJson memory_json(const exec::MemoryEstimate& m) {
  OrderedJson j;
  j["peak_bytes"] = round_sig(m.peak_bytes);
  j["capacity_bytes"] = round_sig(m.capacity_bytes);
  j["fits"] = m.fits();
  j["headroom_bytes"] = round_sig(m.capacity_bytes - m.peak_bytes);
  j["peak_stage"] = m.peak_stage;
  j["cross_entropy_loss_fusion"] = m.cross_entropy_loss_fusion;
  if (m.offloads_activations) {
    j["host_offload_peak_bytes"] = round_sig(m.host_offload_peak_bytes);
    j["host_capacity_bytes"] = round_sig(m.host_capacity_bytes);
  }
  OrderedJson stages = OrderedJson::array();
  for (const auto& s : m.per_stage) {
    OrderedJson e;
    e["stage"] = s.stage;
    e["total_bytes"] = round_sig(s.total_bytes());
    e["weights_bytes"] = round_sig(s.weights_bytes);
    e["gradients_bytes"] = round_sig(s.gradients_bytes);
    e["optimizer_bytes"] = round_sig(s.optimizer_bytes);
    e["activations_bytes"] = round_sig(s.activations_bytes);
    e["routed_tokens_bytes"] = round_sig(s.routed_tokens_bytes);
    e["logits_bytes"] = round_sig(s.logits_bytes);
    e["reserved_bytes"] = round_sig(s.reserved_bytes);
    e["inflight_microbatches"] = s.inflight_microbatches;
    if (m.offloads_activations) e["host_offload_bytes"] = round_sig(s.host_offload_bytes);
    stages.push_back(e);
  }
  j["per_stage"] = stages;
  return j;
}

}  // namespace

OrderedJson experts_json(const scenario::ExpertStats& x) {
  OrderedJson j;
  OrderedJson per_layer = OrderedJson::array();
  for (const auto& l : x.layers) {
    OrderedJson e;
    e["layer"] = l.layer;
    e["max_over_mean_load"] = round_sig(l.max_over_mean_load);
    e["tokens_routed"] = l.tokens_routed;
    e["tokens_dropped"] = l.tokens_dropped;
    e["load"] = l.load;
    per_layer.push_back(e);
  }
  j["tokens_routed"] = x.tokens_routed;
  j["tokens_dropped"] = x.tokens_dropped;
  j["drop_rate"] = round_sig(x.drop_rate);
  j["max_over_mean_load"] = round_sig(x.max_over_mean_load);
  j["per_layer"] = per_layer;
  return j;
}

namespace {

OrderedJson critical_path_json(const exec::CriticalPath& path, const exec::ParallelConfig& p) {
  OrderedJson cp;
  OrderedJson by_cat;
  for (int c = 0; c < kCategoryCount; ++c) {
    if (!exec::category_in_use(static_cast<Category>(c), p)) continue;
    by_cat[seconds_key(static_cast<Category>(c))] = round_sig(path.seconds_by_category[c]);
  }
  cp["seconds_by_category"] = by_cat;
  cp["gpus_visited"] = path.gpus_visited;
  cp["segments"] = path.segments.size();
  if (path.expert_compute_gpu >= 0) {
    cp["expert_compute_gpu"] = path.expert_compute_gpu;
    cp["expert_compute_gpu_s"] = round_sig(path.expert_compute_gpu_seconds);
  } else {
    cp["expert_compute_gpu"] = nullptr;
  }
  // The longest stretches of the path, to say where it runs.
  std::vector<exec::CriticalSegment> top = path.segments;
  std::stable_sort(top.begin(), top.end(),
                   [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
  if (top.size() > 5) top.resize(5);
  OrderedJson longest = OrderedJson::array();
  for (const auto& s : top) {
    OrderedJson e;
    e["gpu"] = s.gpu;
    e["category"] = std::string(exec::category_name(s.category));
    e["seconds"] = round_sig(s.seconds);
    e["tasks"] = s.tasks;
    longest.push_back(e);
  }
  cp["longest_segments"] = longest;
  return cp;
}

// The fields of a simulated run (status "ok").
void metrics_json(const exec::TrainingMetrics& m, const scenario::TrainingRun& run,
                  OrderedJson& r) {
  r["step_time_s"] = round_sig(m.step_time_s);
  OrderedJson steps = OrderedJson::array();
  for (double t : m.step_times_s) steps.push_back(round_sig(t));
  r["step_times_s"] = steps;
  r["tokens_per_s"] = round_sig(m.tokens_per_s);
  r["tokens_per_s_per_gpu"] = round_sig(m.tokens_per_s_per_gpu);
  r["model_flops_per_step"] = round_sig(m.model_flops_per_step);
  r["model_tflops_per_gpu"] = round_sig(m.model_tflops_per_gpu);
  r["mfu"] = round_sig(m.mfu);
  r["mfu_formula"] = std::string(
                         "3 x forward FLOPs per token (2 x active matmul parameters + attention "
                         "scores and values, causal, less the routed-expert FLOPs of token "
                         "copies dropped by capacity") +
                     (run.scenario.setup.model.mtp_layers > 0
                          ? "; the MTP modules' layer, eh_proj and output head included"
                          : "") +
                     ") x tokens per step / (step time x GPUs x dense peak FLOP/s)";
  const exec::ParallelConfig& p = run.scenario.setup.parallel;
  OrderedJson breakdown;
  for (int c = 0; c < kCategoryCount; ++c) {
    if (!exec::category_in_use(static_cast<Category>(c), p)) continue;
    breakdown[seconds_key(static_cast<Category>(c))] = round_sig(m.breakdown.exposed_s[c]);
  }
  breakdown["pipeline_bubble_s"] = round_sig(m.breakdown.pipeline_bubble_s);
  breakdown["idle_s"] = round_sig(m.breakdown.idle_s);
  r["breakdown"] = breakdown;
  OrderedJson overlap;
  for (int c = static_cast<int>(Category::kDispatch); c < kCategoryCount; ++c) {
    if (!exec::category_in_use(static_cast<Category>(c), p)) continue;
    overlap[fmt::format("{}_hidden_s", exec::category_name(static_cast<Category>(c)))] =
        round_sig(m.breakdown.hidden_s[c]);
  }
  r["overlap"] = overlap;
  r["bottleneck"] = m.bottleneck;
  r["critical_path"] = critical_path_json(m.critical_path, p);
  OrderedJson per_gpu = OrderedJson::array();
  for (const exec::GpuSummary& g : m.per_gpu) {
    OrderedJson e;
    e["gpu"] = g.gpu;
    e["node"] = g.node;
    e["busy_s"] = round_sig(g.busy_s);
    e["idle_s"] = round_sig(g.idle_s);
    e["finish_s"] = round_sig(g.finish_s);
    e["expert_token_copies"] = g.expert_token_copies;
    per_gpu.push_back(e);
  }
  r["per_gpu"] = per_gpu;
  OrderedJson sim;
  sim["tasks"] = m.tasks;
  sim["collectives"] = m.collectives;
  sim["events"] = m.events;
  sim["network_model"] = std::string(coll::network_model_name(run.scenario.options.network_model));
  // Which algorithm each kind of collective ran with, and how often.
  OrderedJson algorithms = OrderedJson::object();
  for (int op = 0; op < coll::kCollectiveOps; ++op) {
    for (int a = 0; a < 4; ++a) {
      const uint64_t n = m.algorithms.count[op][a];
      if (n == 0) continue;
      const auto cop = static_cast<coll::CollectiveOp>(op);
      algorithms[std::string(coll::op_name(cop))]
                [std::string(coll::counted_algorithm_name(cop, a))] = n;
    }
  }
  sim["collective_algorithms"] = algorithms;
  r["simulation"] = sim;
}

}  // namespace

double round_sig(double x) {
  if (x == 0 || !std::isfinite(x)) return x;
  const double scale = std::pow(10.0, 8 - static_cast<int>(std::floor(std::log10(std::fabs(x)))));
  return std::round(x * scale) / scale;
}

OrderedJson training_report(const scenario::TrainingRun& run) {
  const exec::TrainingStepSetup& setup = run.scenario.setup;
  OrderedJson r;
  r["schema_version"] = kReportSchemaVersion;
  r["moesim_version"] = MOESIM_VERSION;
  r["report_kind"] = "training";
  r["status"] = run.simulated() ? "ok" : "out_of_memory";
  r["scenario"] = OrderedJson::parse(scenario::scenario_json(run.scenario).dump());
  r["gpus"] = setup.parallel.gpus();
  r["tokens_per_step"] = static_cast<double>(setup.workload.global_batch) * setup.workload.seq_len;
  if (run.metrics) {
    metrics_json(*run.metrics, run, r);
  } else {
    for (const char* k :
         {"step_time_s", "tokens_per_s", "tokens_per_s_per_gpu", "mfu", "breakdown", "overlap"}) {
      r[k] = nullptr;
    }
    r["bottleneck"] = "memory";
  }
  r["memory"] = memory_json(run.memory);
  r["experts"] = experts_json(run.experts);
  r["warnings"] = run.warnings;
  return r;
}

std::string training_summary(const scenario::TrainingRun& run) {
  const exec::TrainingStepSetup& setup = run.scenario.setup;
  const exec::ParallelConfig& p = setup.parallel;
  std::string out =
      p.cp == 1 ? fmt::format("moesim: {} on {} GPUs (dp {} tp {} pp {} ep {})\n",
                              run.scenario.model.name, p.gpus(), p.dp, p.tp, p.pp, p.ep)
                : fmt::format("moesim: {} on {} GPUs (dp {} tp {} cp {} pp {} ep {})\n",
                              run.scenario.model.name, p.gpus(), p.dp, p.tp, p.cp, p.pp, p.ep);
  const exec::MemoryEstimate& mem = run.memory;
  constexpr double kGiB = 1ull << 30;
  if (!run.metrics && !mem.fits_hbm()) {
    out += fmt::format("  OUT OF MEMORY: needs {:.1f} GiB per GPU (stage {}), has {:.1f} GiB\n",
                       round_sig(mem.peak_bytes) / kGiB, mem.peak_stage,
                       round_sig(mem.capacity_bytes) / kGiB);
  } else if (!run.metrics) {
    out += fmt::format(
        "  OUT OF HOST MEMORY: offloaded activations need {:.1f} GiB per GPU, its share of the "
        "node's host memory is {:.1f} GiB\n",
        round_sig(mem.host_offload_peak_bytes) / kGiB, round_sig(mem.host_capacity_bytes) / kGiB);
  } else {
    const exec::TrainingMetrics& m = *run.metrics;
    const double step = round_sig(m.step_time_s);
    out += fmt::format("  step time      {:.4g} s\n", step);
    out += fmt::format("  throughput     {:.4g} tokens/s ({:.4g} per GPU)\n",
                       round_sig(m.tokens_per_s), round_sig(m.tokens_per_s_per_gpu));
    out += fmt::format("  MFU            {:.1f}%  ({:.0f} model TFLOP/s per GPU)\n",
                       100 * round_sig(m.mfu), round_sig(m.model_tflops_per_gpu));
    // The four largest shares of the step, in the report's order on ties.
    std::vector<std::pair<double, std::string>> parts;
    for (int c = 0; c < kCategoryCount; ++c) {
      if (!exec::category_in_use(static_cast<Category>(c), p)) continue;
      parts.push_back({round_sig(m.breakdown.exposed_s[c]),
                       std::string(exec::category_name(static_cast<Category>(c)))});
    }
    parts.push_back({round_sig(m.breakdown.pipeline_bubble_s), "pipeline_bubble"});
    parts.push_back({round_sig(m.breakdown.idle_s), "idle"});
    std::stable_sort(parts.begin(), parts.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    out += "  time           ";
    for (size_t i = 0; i < std::min<size_t>(4, parts.size()); ++i) {
      out +=
          fmt::format("{}{} {:.0f}%", i ? ", " : "", parts[i].second, 100 * parts[i].first / step);
    }
    out += "\n";
    out += fmt::format(
        "  memory         {:.1f} of {:.1f} GiB per GPU (peak stage {}){}\n",
        round_sig(mem.peak_bytes) / kGiB, round_sig(mem.capacity_bytes) / kGiB, mem.peak_stage,
        mem.offloads_activations ? fmt::format("; offloaded {:.1f} of {:.1f} GiB of host memory",
                                               round_sig(mem.host_offload_peak_bytes) / kGiB,
                                               round_sig(mem.host_capacity_bytes) / kGiB)
                                 : "");
  }
  out += fmt::format("  experts        max/mean load {:.3g}, drop rate {:.3g}%\n",
                     round_sig(run.experts.max_over_mean_load),
                     100 * round_sig(run.experts.drop_rate));
  for (const auto& w : run.warnings) out += "  warning: " + w + "\n";
  return out;
}

}  // namespace moesim::reports
