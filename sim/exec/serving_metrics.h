#pragma once
// What a serving run measured, computed once from ServingResult: throughput,
// latency distributions, goodput against the SLO, cache and batch figures.
// Reports and searches read these; nothing recomputes them.
//
// Latencies per request: TTFT = first token - arrival; TPOT = (finish - first
// token) / (output tokens - 1), for requests with more than one output token;
// end-to-end = finish - arrival. Inter-token latency: every gap between two
// consecutive tokens of a request (ServingResult::inter_token). Percentiles
// are nearest-rank (the smallest value with at least q of the values at or
// below it); inter-token percentiles come from a histogram with 0.1% wide
// bins. Throughput counts completed requests' tokens over the run's duration
// (first arrival to last finish).

#include <cstdint>

#include "sim/exec/serving.h"

namespace moesim::exec {

struct LatencyStats {
  int64_t count = 0;
  double mean_s = 0, p50_s = 0, p90_s = 0, p99_s = 0;
};

struct ServingMetrics {
  int64_t requests = 0, completed = 0;
  int64_t input_tokens = 0, output_tokens = 0;  // of completed requests
  double duration_s = 0;
  int gpus = 0;
  double nodes = 0;  // GPUs / GPUs per node
  double requests_per_s = 0;
  double input_tokens_per_s = 0, output_tokens_per_s = 0;
  double input_tokens_per_s_per_gpu = 0, output_tokens_per_s_per_gpu = 0;
  double input_tokens_per_s_per_node = 0, output_tokens_per_s_per_node = 0;
  LatencyStats ttft, tpot, itl, e2e;
  // Goodput: completed requests per second that met every SLO given.
  bool has_slo = false;
  int64_t slo_met = 0;
  double slo_attainment = 0;  // slo_met / completed
  double goodput_requests_per_s = 0, goodput_requests_per_s_per_gpu = 0;
  // Requests in the system, averaged over the run (measured by the simulator;
  // Little's law says it equals the completion rate x mean end-to-end latency).
  double mean_requests_in_system = 0;
  double kv_peak_utilisation = 0, kv_mean_utilisation = 0;
  double batch_mean = 0;
  int batch_max = 0;
  int64_t preemptions = 0;
  bool swap_preemption = false;  // the scheduler preempts by swapping (ServingConfig)
  int64_t swap_fallbacks = 0;    // swap preemptions recomputed: the host swap space was full
  PhaseTime prefill, decode;
  double idle_gpu_s = 0;
};

ServingMetrics serving_metrics(const ServingResult& result, const ServingConfig& config, int gpus,
                               int gpus_per_node);

// One finished request's latencies, exactly as the aggregates above count
// them (the request log prints these).
struct RequestLatency {
  double ttft_s = 0, e2e_s = 0;
  bool has_tpot = false;  // more than one token generated
  double tpot_s = 0;      // 0 without
  bool slo_met = false;   // every objective given met; false without an SLO
};
// REQUIRES: outcome.finished().
RequestLatency request_latency(const RequestOutcome& outcome, const ServingConfig& config);

// Nearest-rank quantile of `sorted` (ascending); 0 for an empty list.
double nearest_rank(const std::vector<double>& sorted, double q);

}  // namespace moesim::exec
