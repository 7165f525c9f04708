#include "reports/inference_report.h"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

#include "reports/training_report.h"

namespace moesim::reports {
namespace {

constexpr double kGiB = 1ull << 30;

OrderedJson latency_json(const exec::LatencyStats& s) {
  OrderedJson j;
  j["count"] = s.count;
  j["mean_s"] = round_sig(s.mean_s);
  j["p50_s"] = round_sig(s.p50_s);
  j["p90_s"] = round_sig(s.p90_s);
  j["p99_s"] = round_sig(s.p99_s);
  return j;
}

double per(double amount, double over) {
  return over > 0 ? amount / over : 0;
}

OrderedJson phase_json(const exec::PhaseTime& p) {
  OrderedJson j;
  j["iterations"] = p.iterations;
  j["seconds"] = round_sig(p.seconds);
  j["mean_iteration_s"] = round_sig(per(p.seconds, p.iterations));
  j["prompt_tokens"] = p.prompt_tokens;
  j["decode_tokens"] = p.decode_tokens;
  OrderedJson each;
  each["attention_s"] = round_sig(per(p.attention_s, p.iterations));
  each["expert_compute_s"] = round_sig(per(p.expert_s, p.iterations));
  each["dispatch_s"] = round_sig(per(p.dispatch_s, p.iterations));
  each["combine_s"] = round_sig(per(p.combine_s, p.iterations));
  each["other_s"] = round_sig(per(p.other_s, p.iterations));
  j["per_iteration"] = each;
  return j;
}

OrderedJson memory_json(const scenario::InferenceGroupMemory& g) {
  const exec::InferenceMemory& m = g.memory;
  OrderedJson j;
  j["role"] = exec::instance_role_name(g.role);
  j["fits"] = m.fits();
  j["capacity_bytes"] = round_sig(m.capacity_bytes);
  j["weights_bytes"] = round_sig(m.weight_bytes());
  j["attention_weights_bytes"] = round_sig(m.attention_weight_bytes);
  j["expert_weights_bytes"] = round_sig(m.expert_weight_bytes);
  j["dense_weights_bytes"] = round_sig(m.dense_weight_bytes);
  j["embedding_weights_bytes"] = round_sig(m.embedding_weight_bytes);
  j["activations_bytes"] = round_sig(m.activation_bytes);
  j["a2a_buffer_bytes"] = round_sig(m.a2a_buffer_bytes);
  j["reserved_bytes"] = round_sig(m.reserved_bytes);
  j["kv_cache_bytes"] = round_sig(m.kv_cache_bytes);
  j["kv_blocks_per_gpu"] = m.kv_blocks;
  j["kv_bytes_per_token_per_gpu"] = round_sig(g.kv_bytes_per_token_per_gpu);
  return j;
}

void metrics_json(const exec::ServingMetrics& m, const exec::ServingResult& result,
                  OrderedJson& r) {
  r["requests"] = {{"count", m.requests},
                   {"completed", m.completed},
                   {"input_tokens", m.input_tokens},
                   {"output_tokens", m.output_tokens}};
  r["duration_s"] = round_sig(m.duration_s);
  OrderedJson t;
  t["requests_per_s"] = round_sig(m.requests_per_s);
  t["input_tokens_per_s"] = round_sig(m.input_tokens_per_s);
  t["output_tokens_per_s"] = round_sig(m.output_tokens_per_s);
  t["input_tokens_per_s_per_gpu"] = round_sig(m.input_tokens_per_s_per_gpu);
  t["output_tokens_per_s_per_gpu"] = round_sig(m.output_tokens_per_s_per_gpu);
  t["input_tokens_per_s_per_node"] = round_sig(m.input_tokens_per_s_per_node);
  t["output_tokens_per_s_per_node"] = round_sig(m.output_tokens_per_s_per_node);
  r["throughput"] = t;
  r["latency"] = {{"ttft", latency_json(m.ttft)},
                  {"tpot", latency_json(m.tpot)},
                  {"itl", latency_json(m.itl)},
                  {"e2e", latency_json(m.e2e)}};
  if (m.has_slo) {
    r["goodput"] = {{"slo_met", m.slo_met},
                    {"slo_attainment", round_sig(m.slo_attainment)},
                    {"requests_per_s", round_sig(m.goodput_requests_per_s)},
                    {"requests_per_s_per_gpu", round_sig(m.goodput_requests_per_s_per_gpu)}};
  } else {
    r["goodput"] = nullptr;
  }
  r["mean_requests_in_system"] = round_sig(m.mean_requests_in_system);
  r["kv_cache"] = {{"peak_utilisation", round_sig(m.kv_peak_utilisation)},
                   {"mean_utilisation", round_sig(m.kv_mean_utilisation)},
                   {"blocks_allocated", result.kv_blocks_allocated},
                   {"blocks_freed", result.kv_blocks_freed}};
  r["batch"] = {{"mean", round_sig(m.batch_mean)}, {"max", m.batch_max}};
  r["preemptions"] = m.preemptions;
  if (m.swap_preemption) {
    r["kv_cache"]["swap_blocks_out"] = result.swap_blocks_out;
    r["kv_cache"]["swap_blocks_in"] = result.swap_blocks_in;
    r["swap_fallbacks"] = m.swap_fallbacks;
  }
  r["breakdown"] = {{"prefill", phase_json(m.prefill)},
                    {"decode", phase_json(m.decode)},
                    {"idle_s", round_sig(per(m.idle_gpu_s, m.gpus))}};
}

}  // namespace

OrderedJson inference_report(const scenario::InferenceRun& run) {
  const scenario::InferenceScenario& s = run.scenario;
  OrderedJson r;
  r["schema_version"] = kReportSchemaVersion;
  r["moesim_version"] = MOESIM_VERSION;
  r["report_kind"] = "inference";
  r["status"] = run.simulated() ? "ok" : "out_of_memory";
  r["scenario"] = OrderedJson::parse(scenario::inference_scenario_json(s).dump());
  r["gpus"] = s.gpus();
  if (run.metrics) {
    metrics_json(*run.metrics, run.result, r);
  } else {
    // The fields a simulated run has, null (swap_fallbacks with swap only).
    const bool swap = s.serving.preemption == exec::ServingConfig::Preemption::kSwap;
    for (const char* k :
         {"requests", "duration_s", "throughput", "latency", "goodput", "mean_requests_in_system",
          "kv_cache", "batch", "preemptions", "swap_fallbacks", "breakdown"}) {
      if (swap || std::string_view(k) != "swap_fallbacks") r[k] = nullptr;
    }
  }
  OrderedJson memory = OrderedJson::array();
  for (const auto& g : run.memory) memory.push_back(memory_json(g));
  r["memory"] = memory;
  r["experts"] = experts_json(run.experts);
  r["simulation"] = {{"iterations", run.result.iterations},
                     {"events", run.result.events},
                     {"network_model", "analytic"}};
  r["warnings"] = run.warnings;
  return r;
}

std::string inference_summary(const scenario::InferenceRun& run) {
  const scenario::InferenceScenario& s = run.scenario;
  std::string out = fmt::format("moesim: serving {} on {} GPUs (", s.model.name, s.gpus());
  for (size_t i = 0; i < s.groups.size(); ++i) {
    const scenario::InstanceGroup& g = s.groups[i];
    out += fmt::format("{}{}{} x tp {} attention_dp {} ep {}", i ? "; " : "",
                       g.role == exec::InstanceRole::kMixed
                           ? ""
                           : std::string(exec::instance_role_name(g.role)) + " ",
                       g.instances, g.parallel.tp, g.parallel.attention_dp, g.parallel.ep);
  }
  out += ")\n";
  if (!run.metrics) {
    for (const auto& g : run.memory) {
      if (g.memory.fits()) continue;
      out += fmt::format(
          "  OUT OF MEMORY ({}): weights {:.1f} GiB + working {:.1f} GiB per GPU, "
          "has {:.1f} GiB\n",
          exec::instance_role_name(g.role), round_sig(g.memory.weight_bytes()) / kGiB,
          round_sig(g.memory.used_bytes_before_kv() - g.memory.weight_bytes()) / kGiB,
          round_sig(g.memory.capacity_bytes) / kGiB);
    }
  } else {
    const exec::ServingMetrics& m = *run.metrics;
    out += fmt::format("  requests       {} completed in {:.4g} s ({:.4g}/s)\n", m.completed,
                       round_sig(m.duration_s), round_sig(m.requests_per_s));
    out += fmt::format("  input tokens   {:.4g}/s ({:.4g} per GPU, {:.4g} per node)\n",
                       round_sig(m.input_tokens_per_s), round_sig(m.input_tokens_per_s_per_gpu),
                       round_sig(m.input_tokens_per_s_per_node));
    out += fmt::format("  output tokens  {:.4g}/s ({:.4g} per GPU, {:.4g} per node)\n",
                       round_sig(m.output_tokens_per_s), round_sig(m.output_tokens_per_s_per_gpu),
                       round_sig(m.output_tokens_per_s_per_node));
    auto ms = [](double sec) { return round_sig(sec) * 1e3; };
    out += fmt::format("  TTFT           mean {:.4g} ms, p50 {:.4g}, p99 {:.4g}\n",
                       ms(m.ttft.mean_s), ms(m.ttft.p50_s), ms(m.ttft.p99_s));
    out += fmt::format("  TPOT           mean {:.4g} ms, p50 {:.4g}, p99 {:.4g}\n",
                       ms(m.tpot.mean_s), ms(m.tpot.p50_s), ms(m.tpot.p99_s));
    if (m.has_slo) {
      out += fmt::format("  goodput        {:.4g} requests/s ({:.1f}% met the SLO)\n",
                         round_sig(m.goodput_requests_per_s), 100 * round_sig(m.slo_attainment));
    }
    out += fmt::format(
        "  batch          mean {:.4g}, max {} running per replica; KV cache peak "
        "{:.1f}%; {} preemptions{}\n",
        round_sig(m.batch_mean), m.batch_max, 100 * round_sig(m.kv_peak_utilisation), m.preemptions,
        m.swap_fallbacks > 0 ? fmt::format(" ({} recomputed: swap space full)", m.swap_fallbacks)
                             : "");
    for (const auto* phase : {&m.prefill, &m.decode}) {
      if (phase->iterations == 0) continue;
      const double n = static_cast<double>(phase->iterations);
      out += fmt::format(
          "  {} iteration {:.4g} ms: attention {:.3g}, experts {:.3g}, dispatch "
          "{:.3g}, combine {:.3g}, other {:.3g}\n",
          phase == &m.prefill ? "prefill" : "decode ", ms(phase->seconds / n),
          ms(phase->attention_s / n), ms(phase->expert_s / n), ms(phase->dispatch_s / n),
          ms(phase->combine_s / n), ms(phase->other_s / n));
    }
    for (const auto& g : run.memory) {
      // The role in the label's column, so that every line's figures align.
      out += fmt::format("  {:<15}weights {:.1f} GiB, KV cache {:.1f} GiB per GPU\n",
                         fmt::format("memory {}", exec::instance_role_name(g.role)),
                         round_sig(g.memory.weight_bytes()) / kGiB,
                         round_sig(g.memory.kv_cache_bytes) / kGiB);
    }
  }
  if (run.metrics) {  // nothing was routed otherwise
    out += fmt::format("  experts        max/mean load {:.3g}, drop rate {:.3g}%\n",
                       round_sig(run.experts.max_over_mean_load),
                       100 * round_sig(run.experts.drop_rate));
  }
  for (const auto& w : run.warnings) out += "  warning: " + w + "\n";
  return out;
}

std::string inference_timeline(const scenario::InferenceRun& run, int max_gpus) {
  const scenario::InferenceScenario& s = run.scenario;
  // Instance index -> its GPUs' global ranks and role.
  struct InstanceInfo {
    int first_gpu = 0, gpus = 0;
    exec::InstanceRole role = exec::InstanceRole::kMixed;
  };
  std::vector<InstanceInfo> instances;
  for (const scenario::InstanceGroup& g : s.groups) {
    for (int k = 0; k < g.instances; ++k)
      instances.push_back({g.first_gpu(k), g.parallel.gpus(), g.role});
  }
  std::string out = "{\"traceEvents\":[\n";
  bool first = true;
  auto emit = [&](const std::string& event) {
    out += first ? "" : ",\n";
    out += event;
    first = false;
  };
  for (size_t i = 0; i < instances.size(); ++i) {
    emit(fmt::format(
        R"j({{"ph":"M","name":"process_name","pid":{},"args":{{"name":"instance {} ({})"}}}})j", i,
        i, exec::instance_role_name(instances[i].role)));
    for (int g = 0; g < instances[i].gpus && instances[i].first_gpu + g < max_gpus; ++g) {
      emit(fmt::format(
          R"j({{"ph":"M","name":"thread_name","pid":{},"tid":{},"args":{{"name":"GPU {}"}}}})j", i,
          instances[i].first_gpu + g, instances[i].first_gpu + g));
    }
  }
  for (const exec::IterationRecord& it : run.result.timeline) {
    const InstanceInfo& info = instances[it.instance];
    const exec::IterationCost& c = it.cost;
    const std::string args = fmt::format(
        R"j("args":{{"prompt_tokens":{},"decode_tokens":{},"attention_us":{:.3f},"expert_compute_us":{:.3f},"dispatch_us":{:.3f},"combine_us":{:.3f},"other_us":{:.3f}}})j",
        it.prompt_tokens, it.decode_tokens, c.attention_s * 1e6, c.expert_s * 1e6,
        c.dispatch_s * 1e6, c.combine_s * 1e6, c.other_s * 1e6);
    for (int g = 0; g < info.gpus && info.first_gpu + g < max_gpus; ++g) {
      emit(
          fmt::format(R"j({{"ph":"X","name":"{}","pid":{},"tid":{},"ts":{:.3f},"dur":{:.3f},{}}})j",
                      it.prefill ? "prefill" : "decode", it.instance, info.first_gpu + g,
                      it.start_s * 1e6, c.seconds * 1e6, args));
    }
  }
  out += "\n],\"displayTimeUnit\":\"ms\"}\n";
  return out;
}

}  // namespace moesim::reports
