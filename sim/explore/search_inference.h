#pragma once
// Serving layout search (`moesim search --mode inference`): the layouts a
// model's serving instances can take on a cluster, each run under one request
// load and ranked by goodput per GPU (requests per second meeting the SLO).
//
// Enumerated, every instance filling the GPUs (instances = gpus / (tp x
// attention_dp)):
//   tp            powers of two dividing the node size and the attention heads
//                 (tensor parallelism stays inside a node);
//   attention_dp  divisors of gpus / tp;
//   ep            attention_dp = 1: divisors of tp; attention_dp > 1: tp x
//                 attention_dp (SGLang's DP attention with DeepEP);
//   two_batch_overlap  off, and on where ep > 1 (only an all-to-all has
//                 anything to hide behind the other micro-batch);
//   max_batch_size     each of the request's choices.
// a2a_algo "auto" (DeepEP normal kernels for iterations with prompt tokens,
// low-latency ones for decode-only iterations), routing "zipf:0.5" seed 1 (as
// the training search), other serving fields at the scenario defaults.
//
// Each layout is checked with scenario::check_inference (rejections counted
// by reason code: out_of_memory, ep_divides_experts, ...), the valid ones
// simulated by scenario::run_inference on `jobs` threads, and the ranking
// sorted by goodput requests/s per GPU, ties by output tokens/s per GPU, then
// enumeration order. Deterministic: the same request gives the same ranking.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/core/progress.h"

namespace moesim::explore {

struct InferenceSearchRequest {
  std::string model;                 // catalog name
  Json cluster;                      // preset name (string) or cluster object
  int gpus = 0;                      // a multiple of the node size
  std::string dtype = "bf16";        // "bf16" or "fp8" (workload.dtype)
  std::string routing = "zipf:0.5";  // every layout's routing generator
  // The load: exactly one of rate_per_s (Poisson arrivals) and concurrency
  // (closed loop: this many requests in flight over the whole cluster).
  double rate_per_s = 0;
  int concurrency = 0;
  int64_t requests = 1000;  // requests simulated per layout
  int64_t input_tokens = 1024, output_tokens = 256;
  double slo_tpot_ms = 0;                     // required (> 0)
  double slo_ttft_ms = 0;                     // 0: no TTFT objective
  std::vector<int> max_batch_sizes{64, 256};  // running requests per replica, tried each
  int jobs = 2;                               // threads
};

struct InferenceLayout {
  int tp = 1, attention_dp = 1, ep = 1, instances = 1;
  bool two_batch_overlap = false;
  int max_batch_size = 256;
};

struct InferenceCandidate {
  InferenceLayout layout;
  Json scenario;  // the scenario simulated (a `moesim run` input)
  // From the simulation (scenario::InferenceRun metrics):
  double goodput_requests_per_s = 0, goodput_requests_per_s_per_gpu = 0;
  double output_tokens_per_s_per_gpu = 0;
  double ttft_p99_s = 0, tpot_p99_s = 0;
  double slo_attainment = 0;  // completed requests meeting the SLO / completed
  double kv_peak_utilisation = 0;
};

struct InferenceSearchResult {
  int enumerated = 0;
  std::map<std::string, int> rejected;      // reason code -> count
  std::vector<InferenceCandidate> ranking;  // simulated, best first
};

// The request's load as a scenario "requests" object (workloads/requests.h).
Json inference_search_requests(const InferenceSearchRequest& request);

// Validates the request (moesim::Error naming the command-line flag:
// "--slo-tpot-ms: ...") and runs the search. `checking` and `simulating`
// report the two passes' progress (may be empty).
InferenceSearchResult search_inference_layouts(const InferenceSearchRequest& request,
                                               const ProgressFn& checking,
                                               const ProgressFn& simulating);

}  // namespace moesim::explore
