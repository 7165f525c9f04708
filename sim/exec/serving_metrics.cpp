#include "sim/exec/serving_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moesim::exec {

double nearest_rank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  const size_t index = static_cast<size_t>(std::clamp(rank, 1.0, double(sorted.size()))) - 1;
  return sorted[index];
}

namespace {

LatencyStats stats(std::vector<double> values) {
  LatencyStats s;
  s.count = static_cast<int64_t>(values.size());
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.mean_s = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  s.p50_s = nearest_rank(values, 0.5);
  s.p90_s = nearest_rank(values, 0.9);
  s.p99_s = nearest_rank(values, 0.99);
  return s;
}

double per(double amount, double over) {
  return over > 0 ? amount / over : 0;
}

}  // namespace

RequestLatency request_latency(const RequestOutcome& o, const ServingConfig& config) {
  RequestLatency l;
  l.ttft_s = o.first_token_s - o.arrival_s;
  l.e2e_s = o.finish_s - o.arrival_s;
  if (o.generated > 1) {
    l.has_tpot = true;
    l.tpot_s = (o.finish_s - o.first_token_s) / static_cast<double>(o.generated - 1);
  }
  const bool has_slo = config.slo_ttft_s > 0 || config.slo_tpot_s > 0;
  l.slo_met = has_slo && (config.slo_ttft_s <= 0 || l.ttft_s <= config.slo_ttft_s) &&
              (config.slo_tpot_s <= 0 || l.tpot_s <= config.slo_tpot_s);
  return l;
}

ServingMetrics serving_metrics(const ServingResult& r, const ServingConfig& config, int gpus,
                               int gpus_per_node) {
  ServingMetrics m;
  m.requests = static_cast<int64_t>(r.requests.size());
  m.duration_s = r.makespan_s;
  m.gpus = gpus;
  m.nodes = static_cast<double>(gpus) / gpus_per_node;
  m.has_slo = config.slo_ttft_s > 0 || config.slo_tpot_s > 0;
  std::vector<double> ttft, tpot, e2e;
  for (const RequestOutcome& o : r.requests) {
    if (!o.finished()) continue;
    ++m.completed;
    m.input_tokens += o.input_tokens;
    m.output_tokens += o.generated;
    const RequestLatency l = request_latency(o, config);
    ttft.push_back(l.ttft_s);
    e2e.push_back(l.e2e_s);
    if (l.has_tpot) tpot.push_back(l.tpot_s);
    if (l.slo_met) ++m.slo_met;
  }
  m.ttft = stats(std::move(ttft));
  m.tpot = stats(std::move(tpot));
  m.e2e = stats(std::move(e2e));
  m.itl.count = static_cast<int64_t>(r.inter_token.count());
  m.itl.mean_s = r.inter_token.mean();
  m.itl.p50_s = r.inter_token.quantile(0.5);
  m.itl.p90_s = r.inter_token.quantile(0.9);
  m.itl.p99_s = r.inter_token.quantile(0.99);

  const double d = m.duration_s;
  m.requests_per_s = per(m.completed, d);
  m.input_tokens_per_s = per(m.input_tokens, d);
  m.output_tokens_per_s = per(m.output_tokens, d);
  m.input_tokens_per_s_per_gpu = per(m.input_tokens_per_s, gpus);
  m.output_tokens_per_s_per_gpu = per(m.output_tokens_per_s, gpus);
  m.input_tokens_per_s_per_node = per(m.input_tokens_per_s, m.nodes);
  m.output_tokens_per_s_per_node = per(m.output_tokens_per_s, m.nodes);
  if (m.has_slo) {
    m.slo_attainment = per(m.slo_met, m.completed);
    m.goodput_requests_per_s = per(m.slo_met, d);
    m.goodput_requests_per_s_per_gpu = per(m.goodput_requests_per_s, gpus);
  }
  m.mean_requests_in_system = per(r.requests_in_system_s, d);
  m.kv_peak_utilisation = r.kv_peak_utilisation;
  m.kv_mean_utilisation = r.kv_mean_utilisation;
  m.batch_mean = r.batch_mean;
  m.batch_max = r.batch_max;
  m.preemptions = r.preemptions;
  m.swap_preemption = config.preemption == ServingConfig::Preemption::kSwap;
  m.swap_fallbacks = r.swap_fallbacks;
  m.prefill = r.prefill;
  m.decode = r.decode;
  m.idle_gpu_s = r.gpu_idle_s;
  return m;
}

}  // namespace moesim::exec
