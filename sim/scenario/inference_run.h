#pragma once
// The inference job: a serving scenario in, a typed result out (`moesim run`
// on a scenario with workload.mode "inference", search --mode inference,
// validate published, bench inference). Deterministic: the same scenario
// gives the same result, byte for byte once serialised.
//
//   resolve_inference_scenario (inference.h) -> per instance group: the
//   kernel cost model, the iteration cost model (exec/inference_costs.h)
//   and the memory per GPU (exec/inference_memory.h) -> if every group's
//   weights fit: the serving simulation (exec/serving.h) with per-iteration
//   routing (serving_routing.h) -> metrics (exec/serving_metrics.h).
//
// Collectives are timed alone by the analytic model (each all-to-all of an
// iteration runs while nothing else crosses the network of its instance).

#include <optional>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/core/progress.h"
#include "sim/exec/inference_memory.h"
#include "sim/exec/serving.h"
#include "sim/exec/serving_metrics.h"
#include "sim/scenario/inference.h"
#include "sim/scenario/run.h"

namespace moesim::scenario {

// Memory of one instance group's GPUs and what it leaves for the KV cache.
struct InferenceGroupMemory {
  exec::InstanceRole role = exec::InstanceRole::kMixed;
  exec::InferenceMemory memory;
  double kv_bytes_per_token_per_gpu = 0;
  int64_t low_latency_tokens_per_rank = 0;  // DeepEP buffer sizing (0: no buffer)
};

struct InferenceRun {
  InferenceScenario scenario;
  std::vector<InferenceGroupMemory> memory;  // per group, in scenario.groups order
  ExpertStats experts;
  // Empty when some group's weights do not fit (nothing is simulated).
  std::optional<exec::ServingMetrics> metrics;
  exec::ServingResult result;
  std::vector<std::string> warnings;

  bool simulated() const { return metrics.has_value(); }
};

// Resolves, checks and simulates `doc`. Invalid scenarios throw moesim::Error
// (InvalidStrategy for layouts the model or cluster cannot run, and
// "kv_capacity" for a request longer than an attention replica's KV cache).
// `progress` (if set) hears of finished requests as they finish.
InferenceRun run_inference(const Json& doc, const ProgressFn& progress = {});

// One prefill iteration of `doc`'s first instance group, priced part by part:
// every attention replica batching `tokens_per_replica` prompt tokens in
// prompts of `prompt_tokens`, routed as the scenario routes. Each part alone
// (as exec::LayerCost gives it), summed over the layers and micro-batches,
// in seconds; for comparing with a profile's per-kernel times. Throws
// std::invalid_argument unless both token counts are >= 1.
struct PrefillParts {
  double attention_core_s = 0;
  double routed_experts_s = 0;  // grouped GEMMs, their activation and casts
  double linear_gemm_s = 0;     // the block-FP8 linears' GEMMs (LayerCost's *_gemm parts)
  double compute_s = 0;         // every compute part, the two above included
  double dispatch_s = 0, combine_s = 0;
  int layers = 0;
};
PrefillParts prefill_parts(const Json& doc, int64_t tokens_per_replica, int64_t prompt_tokens);

// Validates an inference scenario and sizes its memory without simulating it.
ScenarioCheck check_inference(const Json& doc);

// What a closed loop's figures describe, where that is not a steady state:
// all of its first `concurrency` requests arrive at once (a warning when the
// count is under twice that), and requests that all ask for the same output
// length finish and are replaced together (a warning unless the instances
// only prefill, ending every request at its first token). Empty for open
// loops and traces. `moesim run` reports these; `moesim search` prints them
// once for its load.
// `names`: what the warnings call the load's fields (the scenario's by
// default, the search's flags there).
struct LoadFieldNames {
  const char* count = "requests.count";
  const char* concurrency = "requests.concurrency";
  const char* output_tokens = "requests.output_tokens";
};
std::vector<std::string> closed_loop_warnings(const workloads::RequestLoad& load, bool prefill_only,
                                              const LoadFieldNames& names = {});

}  // namespace moesim::scenario
