#pragma once
// Strategy search: every (dp, tp, cp, pp, virtual stages, ep, etp,
// micro-batch, recompute, ZeRO) combination for a model on a cluster,
// rejected when invalid, pruned by memory before simulating, ranked by
// simulated tokens/s per GPU. Candidates that only add work to another of
// the same layout that fits (more recompute, or ZeRO-3 where ZeRO-1 fits)
// are not simulated ("dominated" in the rejected counts; search.cpp). Context
// parallelism is tried where sequences are long: powers of two that leave each
// rank at least 4,096 tokens; those candidates also try "selective_moe".
//
// To keep hundreds of points affordable a candidate with many micro-batches
// per replica (m) is simulated at two smaller counts, m2 = pp + 1 and m3 =
// pp + 2 (2 pp and 3 pp with virtual stages, as interleaving needs a multiple
// of pp), and extrapolated along the line through them: T(m) = T(m3) +
// (m - m3) (T(m3) - T(m2)) / (m3 - m2). Past the pipeline's fill every
// micro-batch adds the same time, whatever bounds the step: the slowest
// stage's compute, or ZeRO-2/3's per-micro-batch gathers and reduce-scatters.
// Points with m <= m3 are simulated exactly.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/core/progress.h"
#include "sim/explore/processes.h"

namespace moesim::explore {

struct SearchRequest {
  std::string model;  // catalog name
  Json cluster;       // preset name (string) or cluster object
  int gpus = 0;       // a multiple of the node size
  int64_t global_batch = 0;
  int64_t seq_len = 4096;
  // "bf16" or "fp8" (workload.dtype). FP8 candidates keep Adam's moments in
  // BF16, as the Megatron-MoE-ModelZoo's FP8 recipe does
  // (sbatch_benchmarking.sh: --use-precision-aware-optimizer --exp-avg-dtype
  // bf16 --exp-avg-sq-dtype bf16).
  std::string dtype = "bf16";
  // Every candidate's routing generator (workloads/routing_generator.h):
  // "uniform" for force-balanced benchmarks; skew is paid in step time.
  std::string routing = "zipf:0.5";
  // Virtual pipeline stages per rank to try where pp > 1 (Megatron-Core's
  // interleaved schedule, --num-virtual-stages-per-pipeline-rank); 1 is the
  // plain 1F1B schedule.
  std::vector<int> virtual_stages{1};
  int jobs = 2;  // threads per process
  // The processes sharing the simulations (processes.h); the ranking is
  // complete on rank 0 only.
  Processes processes;
};

struct SearchCandidate {
  int dp = 1, tp = 1, cp = 1, pp = 1, ep = 1, etp = 1, micro_batch_size = 1, zero_stage = 1;
  int virtual_stages = 1;
  std::string recompute;
  Json scenario;
  double step_time_s = 0, tokens_per_s_per_gpu = 0, mfu = 0;
  double memory_headroom_bytes = 0;
  std::string bottleneck;
};

struct SearchResult {
  int enumerated = 0;
  std::map<std::string, int> rejected;   // reason code -> count
  std::vector<SearchCandidate> ranking;  // simulated, fastest first
};

// `checking` and `simulating` report the two passes' progress (may be empty).
SearchResult search_strategies(const SearchRequest& request, const ProgressFn& checking,
                               const ProgressFn& simulating);

}  // namespace moesim::explore
