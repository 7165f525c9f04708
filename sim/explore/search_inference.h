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
//   max_batch_size     each of the request's choices;
//   redundant_experts  each of the request's choices where ep > 1
//                 (gating.redundant_experts: EPLB's replicas; the expert
//                 slots must divide over ep, as SGLang requires).
// With `disaggregation`, also every prefill/decode split of the nodes (1 to
// nodes - 1 prefill nodes), each role made of SGLang's large-EP instances of
// whole nodes (tp 1, attention_dp = ep = the instance's GPUs; each divisor
// of the role's nodes an instance size, the two roles' sizes chosen
// independently), with the same two_batch_overlap, max_batch_size and
// redundant_experts choices.
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
#include "sim/explore/processes.h"

namespace moesim::explore {

// Layouts a serving search may enumerate unless the caller raises it
// (`--max-layouts`, up to kMaxServingLayouts): each keeps its scenario in
// memory (a few KB) until it is checked.
inline constexpr int64_t kDefaultMaxServingLayouts = 20'000;
inline constexpr int64_t kMaxServingLayouts = 200'000;

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
  // Prompt and output lengths: fixed, or uniform in [tokens, tokens_max]
  // where tokens_max is set (> 0). Spread keeps a closed loop from running
  // in lock-step waves.
  int64_t input_tokens = 1024, input_tokens_max = 0;
  int64_t output_tokens = 256, output_tokens_max = 0;
  int64_t input_tokens_upper() const {
    return input_tokens_max > 0 ? input_tokens_max : input_tokens;
  }
  int64_t output_tokens_upper() const {
    return output_tokens_max > 0 ? output_tokens_max : output_tokens;
  }
  double slo_tpot_ms = 0;                     // required (> 0)
  double slo_ttft_ms = 0;                     // 0: no TTFT objective
  std::vector<int> max_batch_sizes{64, 256};  // running requests per replica, tried each
  std::vector<int> redundant_experts{0};      // EPLB replicas, tried each where ep > 1
  bool disaggregation = false;                // also prefill/decode splits of the nodes
  // Layouts enumerated at most (splits grow with the nodes squared times
  // their divisors); a search past it is refused before it takes memory.
  int64_t max_layouts = kDefaultMaxServingLayouts;
  int jobs = 2;  // threads per process
  // The processes sharing the simulations (processes.h); the ranking is
  // complete on rank 0 only.
  Processes processes;
};

// Instances of one shape: a co-located layout's, or one role's of a
// disaggregated layout (nodes: the role's share of the cluster).
struct InferenceInstances {
  int nodes = 0;
  int tp = 1, attention_dp = 1, ep = 1, instances = 1;
};

struct InferenceLayout {
  int tp = 1, attention_dp = 1, ep = 1, instances = 1;  // co-located
  bool disaggregated = false;                           // then prefill and decode instead
  InferenceInstances prefill, decode;
  bool two_batch_overlap = false;
  int max_batch_size = 256;
  int redundant_experts = 0;
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
  // About the load itself (scenario::closed_loop_warnings): where a closed
  // loop's figures describe its start or its lock-step waves.
  std::vector<std::string> warnings;
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
