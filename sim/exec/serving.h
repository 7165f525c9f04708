#pragma once
// Serving on the discrete-event engine: requests arrive, each instance's
// scheduler batches them iteration by iteration (continuous batching), and
// every iteration costs what InferenceCostModel says for the batch it ran.
//
// Per attention replica, at the start of an iteration (vLLM V1's scheduler,
// vllm/v1/core/sched/scheduler.py):
//   1. every running request past its prefill decodes one token; one that
//      needs a new KV block when none is free preempts the most recently
//      admitted request (recompute: its blocks are freed and it returns to
//      the front of the queue to prefill again; swap: its blocks go to host
//      memory over PCIe and come back before it resumes, if the replica's
//      swap space has room for them, else it is recomputed);
//   2. a request part-way through its prompt continues with its next chunk;
//   3. waiting requests are admitted in arrival order while the batch has
//      room (max_batch_size), the iteration's token budget (max_num_tokens)
//      lasts and KV blocks are free, each with a chunk of at most
//      chunked_prefill tokens (0: the whole prompt, as budget allows).
// All replicas of an instance run each iteration together (the all-to-alls
// need every rank); the slowest sets its time. A request's last prompt chunk
// yields its first token (TTFT); each decode one more.
//
// Disaggregation: prefill instances only prefill; a request whose prompt is
// done moves its KV cache to a decode instance (kv_transfer_seconds, queued
// behind the prefill replica's earlier transfers) and decodes there. A setup
// with decode instances only starts every request there with its prompt's
// cache in place and its first token given (the prefill side is not
// simulated, as SGLang's decode-only stress tests run); one with prefill
// instances only ends every request at its first token.

#include <array>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "sim/core/progress.h"
#include "sim/exec/inference_costs.h"

namespace moesim::exec {

struct ServingConfig {
  int max_batch_size = 256;       // running requests per replica
  int64_t max_num_tokens = 8192;  // tokens per iteration per replica
  int64_t chunked_prefill = 0;    // prompt tokens per chunk; 0: whole prompts
  int kv_block_tokens = 64;
  enum class Preemption { kRecompute, kSwap } preemption = Preemption::kRecompute;
  // Host memory per GPU that swapped-out caches may take (vLLM's
  // --swap-space, CacheConfig.swap_space: 4 GiB per GPU by default,
  // vllm/config/cache.py). vLLM's scheduler aborts the engine when a victim
  // does not fit (vllm/core/scheduler.py _swap_out); here that victim is
  // recomputed instead and counted (ServingResult::swap_fallbacks).
  double swap_space_bytes = 4.0 * (1ull << 30);
  double slo_ttft_s = 0, slo_tpot_s = 0;  // 0: no objective
};

enum class InstanceRole { kMixed, kPrefill, kDecode };
// "mixed", "prefill", "decode": the name scenarios and reports use.
std::string_view instance_role_name(InstanceRole role);

struct ServingInstance {
  InstanceRole role = InstanceRole::kMixed;
  int replicas = 1;
  int gpus = 1;
  int64_t kv_blocks_per_replica = 0;
  // REQUIRED; every instance's cost model prices the same model (a
  // scenario serves one), whose windows the scheduler's KV blocks follow.
  const InferenceCostModel* cost = nullptr;
  IterationRouting* routing = nullptr;
};

struct ServingRequest {
  double arrival_s = 0;
  int64_t input_tokens = 0, output_tokens = 0;
};

struct ServingSetup {
  ServingConfig config;
  std::vector<ServingInstance> instances;
  // Closed loop: this many requests in flight (each finish issues the next);
  // 0: open loop, requests arrive at their arrival_s.
  int concurrency = 0;
  double host_link_bytes_per_s = 0;  // GPU <-> host (swap)
  // Moving a prompt's KV cache from prefill replica `replica` (its index over
  // all prefill replicas) to a decode instance: seconds alone. Transfers from
  // one replica go one after another (they share its GPUs' NICs).
  std::function<double(int64_t tokens)> kv_transfer_seconds;
  // Iterations simulated at most (all instances together): a load the
  // instances cannot keep up with stops here (ServingResult::truncated).
  uint64_t max_iterations = 0;  // 0: no limit
  // Iterations kept for the timeline (the first ones).
  uint64_t recorded_iterations = 0;
  // Called (if set) with the requests finished and their count, as a
  // thousandth more of them finish and at the last.
  ProgressFn progress;
};

// Where iterations spent their time, summed over iterations of one kind.
struct PhaseTime {
  int64_t iterations = 0;
  double seconds = 0, attention_s = 0, expert_s = 0, dispatch_s = 0, combine_s = 0, other_s = 0;
  double gpu_seconds = 0;  // seconds x the instance's GPUs
  int64_t prompt_tokens = 0, decode_tokens = 0;
  void add(const IterationCost& c, int gpus, int64_t prompt, int64_t decode);
};

// One iteration of one instance, for timelines.
struct IterationRecord {
  int instance = 0;
  double start_s = 0;
  IterationCost cost;
  bool prefill = false;
  int64_t prompt_tokens = 0, decode_tokens = 0;
};

struct RequestOutcome {
  double arrival_s = 0, first_token_s = -1, finish_s = -1;
  int64_t input_tokens = 0, output_tokens = 0, generated = 0;
  int preemptions = 0;
  bool finished() const { return finish_s >= 0; }
};

// Inter-token gaps, kept as a log-spaced histogram (0.1% wide bins from 1 us
// to ~1000 s) so a run of millions of tokens needs a few KB.
class GapHistogram {
 public:
  void add(double seconds);
  double quantile(double q) const;
  double mean() const { return count_ ? sum_ / count_ : 0; }
  uint64_t count() const { return count_; }

 private:
  static constexpr int kBins = 20800;  // ln(1e9) / ln(1.001)
  std::array<uint64_t, kBins> bins_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

struct ServingResult {
  std::vector<RequestOutcome> requests;
  GapHistogram inter_token;
  PhaseTime prefill, decode;  // iterations with prompt tokens / decode only
  double makespan_s = 0;      // first arrival to last finish
  // The time integral of requests arrived and not finished (Little's law).
  double requests_in_system_s = 0;
  double gpu_idle_s = 0;  // instance-seconds with nothing to run, summed over instances
  int64_t preemptions = 0;
  double kv_peak_utilisation = 0, kv_mean_utilisation = 0;  // of all replicas' blocks
  double batch_mean = 0;
  int batch_max = 0;  // running requests per replica per iteration
  int64_t kv_blocks_allocated = 0, kv_blocks_freed = 0;  // conservation
  // Swap preemption: KV blocks moved to host swap space and back (equal at
  // the end), and preemptions recomputed because the swap space was full.
  int64_t swap_blocks_out = 0, swap_blocks_in = 0;
  int64_t swap_fallbacks = 0;
  uint64_t events = 0;
  uint64_t iterations = 0;
  bool truncated = false;  // stopped at max_iterations
  std::vector<IterationRecord> timeline;
};

ServingResult simulate_serving(const ServingSetup& setup, std::vector<ServingRequest> requests);

// The fewest iterations (all instances together) that could serve
// `requests`, from three bounds: an instance's iteration yields at most one
// token per running request (at most min(max_batch_size, max_num_tokens) per
// replica, `concurrency` in all in a closed loop); it computes at most
// max_num_tokens prompt tokens per replica (a whole prompt alone, without
// chunked prefill); and one request's prompt chunks and tokens come one
// iteration after another. A lower bound, cheap to compute, so a caller can
// refuse a load its iteration limit cannot finish before simulating it.
struct IterationFloor {
  int64_t tokens = 0;                // generated by iterations (not given with a cache)
  int64_t tokens_per_iteration = 0;  // the most one instance's iteration yields
  int64_t prompt_tokens = 0;         // computed by prefill-capable instances
  int64_t prompt_tokens_per_iteration = 0;
  int64_t longest_request = 0;  // iterations one request needs in a row
  uint64_t iterations = 0;      // the largest of the three bounds
};
IterationFloor min_serving_iterations(const ServingSetup& setup,
                                      const std::vector<ServingRequest>& requests);

}  // namespace moesim::exec
