#include "reports/training_report.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace moesim::reports {
namespace {

using exec::Category;

constexpr const char* kCategoryKey[exec::kCategoryCount] = {
    "attention_compute_s", "dense_compute_s", "expert_compute_s",
    "other_compute_s",     "optimizer_s",     "framework_overhead_s",
    "dispatch_s",          "combine_s",       "tp_comm_s",
    "pp_comm_s",           "dp_comm_s"};

constexpr const char* kCategoryName[exec::kCategoryCount] = {
    "attention_compute", "dense_compute", "expert_compute",
    "other_compute",     "optimizer",     "framework_overhead",
    "dispatch",          "combine",       "tp_comm",
    "pp_comm",           "dp_comm"};

double round_sig(double x) {
  // Reports carry 9 significant digits: enough for any comparison, and short.
  if (x == 0 || !std::isfinite(x)) return x;
  const double scale = std::pow(10.0, 8 - static_cast<int>(std::floor(std::log10(std::fabs(x)))));
  return std::round(x * scale) / scale;
}

OrderedJson memory_json(const exec::MemoryEstimate& m) {
  OrderedJson j;
  j["peak_bytes"] = round_sig(m.peak_bytes);
  j["capacity_bytes"] = round_sig(m.capacity_bytes);
  j["fits"] = m.fits();
  j["headroom_bytes"] = round_sig(m.capacity_bytes - m.peak_bytes);
  j["peak_stage"] = m.peak_stage;
  j["cross_entropy_loss_fusion"] = m.cross_entropy_loss_fusion;
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
    stages.push_back(e);
  }
  j["per_stage"] = stages;
  return j;
}

OrderedJson experts_json(const std::vector<LayerExpertStats>& layers) {
  OrderedJson j;
  int64_t routed = 0, dropped = 0;
  double worst = 0;
  OrderedJson per_layer = OrderedJson::array();
  for (const auto& l : layers) {
    const int64_t sum = std::accumulate(l.load.begin(), l.load.end(), int64_t{0});
    const int64_t mx = l.load.empty() ? 0 : *std::max_element(l.load.begin(), l.load.end());
    const double mean = l.load.empty() ? 0 : static_cast<double>(sum) / l.load.size();
    const double ratio = mean > 0 ? mx / mean : 0;
    worst = std::max(worst, ratio);
    routed += sum;
    dropped += l.tokens_dropped;
    OrderedJson e;
    e["layer"] = l.layer;
    e["max_over_mean_load"] = round_sig(ratio);
    e["tokens_routed"] = sum;
    e["tokens_dropped"] = l.tokens_dropped;
    e["load"] = l.load;
    per_layer.push_back(e);
  }
  j["tokens_routed"] = routed;
  j["tokens_dropped"] = dropped;
  j["drop_rate"] =
      routed + dropped > 0 ? round_sig(static_cast<double>(dropped) / (routed + dropped)) : 0.0;
  j["max_over_mean_load"] = round_sig(worst);
  j["per_layer"] = per_layer;
  return j;
}

}  // namespace

OrderedJson training_report(const TrainingReportInput& in) {
  const exec::TrainingStepSetup& setup = *in.setup;
  const int gpus = setup.parallel.gpus();
  OrderedJson r;
  r["schema_version"] = kReportSchemaVersion;
  r["moesim_version"] = MOESIM_VERSION;
  r["status"] = in.result ? "ok" : "out_of_memory";
  r["scenario"] = in.resolved_scenario;
  const double tokens_per_step =
      static_cast<double>(setup.workload.global_batch) * setup.workload.seq_len;
  r["gpus"] = gpus;
  r["tokens_per_step"] = tokens_per_step;
  if (!in.result) {
    r["step_time_s"] = nullptr;
    r["tokens_per_s"] = nullptr;
    r["tokens_per_s_per_gpu"] = nullptr;
    r["mfu"] = nullptr;
    r["breakdown"] = nullptr;
    r["overlap"] = nullptr;
    r["bottleneck"] = "memory";
  } else {
    const exec::TrainingResult& res = *in.result;
    const double step = res.mean_step_time_s;
    r["step_time_s"] = round_sig(step);
    OrderedJson steps = OrderedJson::array();
    for (const auto& s : res.steps) steps.push_back(round_sig(s.step_time_s));
    r["step_times_s"] = steps;
    r["tokens_per_s"] = round_sig(tokens_per_step / step);
    r["tokens_per_s_per_gpu"] = round_sig(tokens_per_step / step / gpus);
    r["model_flops_per_step"] = round_sig(res.model_flops_per_step);
    r["model_tflops_per_gpu"] = round_sig(res.model_flops_per_step / step / gpus / 1e12);
    r["mfu"] = round_sig(res.model_flops_per_step / (step * gpus * setup.peak_flops_per_gpu));
    r["mfu_formula"] =
        "3 x forward FLOPs per token (2 x active matmul parameters + attention scores and "
        "values, causal) x tokens per step / (step time x GPUs x dense peak FLOP/s)";

    // Average over GPUs and steps of each GPU's time account: the categories
    // add up to the step time.
    std::array<double, exec::kCategoryCount> exposed{}, hidden{};
    double bubble = 0, idle = 0;
    for (const auto& s : res.steps) {
      for (const auto& a : s.execution.per_gpu) {
        for (int c = 0; c < exec::kCategoryCount; ++c) {
          exposed[c] += a.exposed_s[c];
          hidden[c] += a.hidden_s[c];
        }
        bubble += a.bubble_s;
        idle += a.idle_s;
      }
    }
    const double n = static_cast<double>(gpus) * res.steps.size();
    OrderedJson breakdown;
    std::string bottleneck = "idle";
    double worst = -1;
    for (int c = 0; c < exec::kCategoryCount; ++c) {
      breakdown[kCategoryKey[c]] = round_sig(exposed[c] / n);
      if (exposed[c] > worst) {
        worst = exposed[c];
        bottleneck = kCategoryName[c];
      }
    }
    breakdown["pipeline_bubble_s"] = round_sig(bubble / n);
    breakdown["idle_s"] = round_sig(idle / n);
    if (bubble > worst) bottleneck = "pipeline_bubble";
    r["breakdown"] = breakdown;
    OrderedJson overlap;
    for (int c = static_cast<int>(Category::kDispatch); c < exec::kCategoryCount; ++c) {
      overlap[fmt::format("{}_hidden_s", kCategoryName[c])] = round_sig(hidden[c] / n);
    }
    r["overlap"] = overlap;
    r["bottleneck"] = bottleneck;

    const exec::StepOutcome& last = res.steps.back();
    OrderedJson cp;
    OrderedJson by_cat;
    for (int c = 0; c < exec::kCategoryCount; ++c) {
      by_cat[kCategoryKey[c]] = round_sig(last.critical_path.seconds_by_category[c]);
    }
    cp["seconds_by_category"] = by_cat;
    cp["gpus_visited"] = last.critical_path.gpus_visited;
    cp["segments"] = last.critical_path.segments.size();
    if (last.critical_path.expert_compute_gpu >= 0) {
      cp["expert_compute_gpu"] = last.critical_path.expert_compute_gpu;
      cp["expert_compute_gpu_s"] = round_sig(last.critical_path.expert_compute_gpu_seconds);
    } else {
      cp["expert_compute_gpu"] = nullptr;
    }
    // The longest stretches of the path, to say where it runs.
    std::vector<exec::CriticalSegment> top = last.critical_path.segments;
    std::stable_sort(top.begin(), top.end(),
                     [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
    if (top.size() > 5) top.resize(5);
    OrderedJson longest = OrderedJson::array();
    for (const auto& s : top) {
      OrderedJson e;
      e["gpu"] = s.gpu;
      e["category"] = kCategoryName[static_cast<int>(s.category)];
      e["seconds"] = round_sig(s.seconds);
      e["tasks"] = s.tasks;
      longest.push_back(e);
    }
    cp["longest_segments"] = longest;
    r["critical_path"] = cp;

    OrderedJson per_gpu = OrderedJson::array();
    const auto& routed = res.last_graph.expert_tokens_per_gpu;
    for (int g = 0; g < gpus; ++g) {
      const auto& a = last.execution.per_gpu[g];
      OrderedJson e;
      e["gpu"] = g;
      e["node"] = g / setup.gpus_per_node;
      e["busy_s"] = round_sig(a.busy_s);
      e["idle_s"] = round_sig(last.step_time_s - a.busy_s);
      e["finish_s"] = round_sig(a.finish_s);
      e["expert_token_copies"] = g < static_cast<int>(routed.size()) ? routed[g] : 0;
      per_gpu.push_back(e);
    }
    r["per_gpu"] = per_gpu;
    OrderedJson sim;
    sim["tasks"] = last.tasks;
    sim["collectives"] = last.collectives;
    sim["events"] = last.events;
    sim["network_model"] = in.network_model;
    r["simulation"] = sim;
  }
  r["memory"] = memory_json(in.memory);
  r["experts"] = experts_json(in.experts);
  r["warnings"] = in.warnings;
  return r;
}

std::string training_summary(const OrderedJson& r) {
  std::string out;
  const auto& sc = r["scenario"];
  std::string model = "model";
  if (sc.contains("model") && sc["model"].is_object() && sc["model"].contains("name")) {
    model = sc["model"]["name"].get<std::string>();
  }
  out += fmt::format("moesim: {} on {} GPUs", model, r["gpus"].get<int>());
  if (sc.contains("parallel")) {
    const auto& p = sc["parallel"];
    out += fmt::format(" (dp {} tp {} pp {} ep {})", p["dp"].get<int>(), p["tp"].get<int>(),
                       p["pp"].get<int>(), p["ep"].get<int>());
  }
  out += "\n";
  const auto& mem = r["memory"];
  if (r["status"] == "out_of_memory") {
    out += fmt::format("  OUT OF MEMORY: needs {:.1f} GiB per GPU (stage {}), has {:.1f} GiB\n",
                       mem["peak_bytes"].get<double>() / (1ull << 30), mem["peak_stage"].get<int>(),
                       mem["capacity_bytes"].get<double>() / (1ull << 30));
  } else {
    out += fmt::format("  step time      {:.4g} s\n", r["step_time_s"].get<double>());
    out += fmt::format("  throughput     {:.4g} tokens/s ({:.4g} per GPU)\n",
                       r["tokens_per_s"].get<double>(), r["tokens_per_s_per_gpu"].get<double>());
    out += fmt::format("  MFU            {:.1f}%  ({:.0f} model TFLOP/s per GPU)\n",
                       100 * r["mfu"].get<double>(), r["model_tflops_per_gpu"].get<double>());
    std::vector<std::pair<double, std::string>> parts;
    for (const auto& [k, v] : r["breakdown"].items()) parts.push_back({v.get<double>(), k});
    std::stable_sort(parts.begin(), parts.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    const double step = r["step_time_s"].get<double>();
    out += "  time           ";
    for (size_t i = 0; i < std::min<size_t>(4, parts.size()); ++i) {
      std::string name = parts[i].second.substr(0, parts[i].second.size() - 2);
      out += fmt::format("{}{} {:.0f}%", i ? ", " : "", name, 100 * parts[i].first / step);
    }
    out += "\n";
    out += fmt::format("  memory         {:.1f} of {:.1f} GiB per GPU (peak stage {})\n",
                       mem["peak_bytes"].get<double>() / (1ull << 30),
                       mem["capacity_bytes"].get<double>() / (1ull << 30),
                       mem["peak_stage"].get<int>());
  }
  const auto& ex = r["experts"];
  out += fmt::format("  experts        max/mean load {:.3g}, drop rate {:.3g}%\n",
                     ex["max_over_mean_load"].get<double>(), 100 * ex["drop_rate"].get<double>());
  for (const auto& w : r["warnings"]) out += "  warning: " + w.get<std::string>() + "\n";
  return out;
}

}  // namespace moesim::reports
