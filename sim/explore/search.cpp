#include "sim/explore/search.h"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <fmt/format.h>

#include "hwmodels/cluster.h"
#include "sim/core/error.h"
#include "sim/explore/candidate_pass.h"
#include "sim/scenario/run.h"
#include "workloads/model_config.h"
#include "workloads/routing_generator.h"

namespace moesim::explore {
namespace {

Json scenario_for(const SearchRequest& r, int gpus_per_node, const SearchCandidate& c,
                  int64_t global_batch) {
  Json cluster = r.cluster.is_string() ? Json{{"preset", r.cluster}} : r.cluster;
  cluster["nodes"] = r.gpus / gpus_per_node;
  Json parallel{{"dp", c.dp},
                {"tp", c.tp},
                {"pp", c.pp},
                {"ep", c.ep},
                {"etp", c.etp},
                {"sequence_parallel", c.tp > 1},
                {"zero_stage", c.zero_stage},
                {"micro_batch_size", c.micro_batch_size},
                {"recompute", c.recompute},
                {"a2a_algo", "hierarchical"}};
  if (c.cp > 1) parallel["cp"] = c.cp;
  if (c.virtual_stages > 1) {
    parallel["pipeline_schedule"] = "interleaved";
    parallel["virtual_stages"] = c.virtual_stages;
  }
  Json workload{{"seq_len", r.seq_len}, {"global_batch", global_batch}};
  if (r.dtype != "bf16") {
    workload["dtype"] = r.dtype;
    parallel["use_precision_aware_optimizer"] = true;
    parallel["exp_avg_dtype"] = "bf16";
    parallel["exp_avg_sq_dtype"] = "bf16";
  }
  return Json{{"model", r.model},
              {"cluster", cluster},
              {"parallel", parallel},
              {"workload", workload},
              {"routing", {{"generator", r.routing}, {"seed", 1}}},
              {"gating", {{"capacity_factor", "dropless"}}},
              {"options", {{"routing_samples", 1}, {"max_routings_per_step", 1 << 20}}}};
}

// Context-parallel degrees worth trying: 1, and powers of two that leave each
// rank at least 4,096 tokens of a sequence (Megatron-Core's context-parallel
// guide splits an 8K sequence over 2 ranks; below that the ring's transfers
// stop hiding behind its attention blocks) and divide the GPUs left.
std::vector<int> context_parallel_degrees(int64_t seq_len, int gpus_left) {
  std::vector<int> out{1};
  for (int cp = 2; seq_len / cp >= 4096 && gpus_left % cp == 0; cp *= 2) out.push_back(cp);
  return out;
}

// The tensor, pipeline and context-parallel grids to try: tp dividing the
// node, pp no deeper than the layers, each requested virtual-stage count where
// pp > 1, cp as above.
struct Grid {
  int tp, pp, virtual_stages, cp;
};
std::vector<Grid> grids(const SearchRequest& r, int layers, int gpus_per_node) {
  std::vector<Grid> out;
  for (int tp : divisors(gpus_per_node)) {
    for (int pp : divisors(r.gpus / tp)) {
      if (pp > layers) continue;
      for (int v : r.virtual_stages) {
        if (pp == 1 && v > 1) continue;
        for (int cp : context_parallel_degrees(r.seq_len, r.gpus / (tp * pp)))
          out.push_back({tp, pp, v, cp});
      }
    }
  }
  return out;
}

std::vector<SearchCandidate> enumerate(const SearchRequest& r, int layers, int routed_experts,
                                       int gpus_per_node) {
  std::vector<SearchCandidate> out;
  for (const Grid& g : grids(r, layers, gpus_per_node)) {
    // Long sequences also try recomputing whole MoE layers, as the
    // ModelZoo's long-context runs do.
    std::vector<const char*> recomputes{"none", "selective", "full"};
    if (g.cp > 1 && routed_experts > 0) recomputes.push_back("selective_moe");
    const std::vector<int> etps = g.tp == 1 ? std::vector<int>{1} : std::vector<int>{1, g.tp};
    for (int ep : divisors(std::max(1, routed_experts))) {
      for (int etp : etps) {
        for (int mbs : {1, 2}) {
          for (const char* recompute : recomputes) {
            for (int zero : {1, 3}) {
              SearchCandidate c;
              c.dp = r.gpus / (g.tp * g.cp * g.pp);
              c.tp = g.tp;
              c.cp = g.cp;
              c.pp = g.pp;
              c.virtual_stages = g.virtual_stages;
              c.ep = ep;
              c.etp = etp;
              c.micro_batch_size = mbs;
              c.recompute = recompute;
              c.zero_stage = zero;
              c.scenario = scenario_for(r, gpus_per_node, c, r.global_batch);
              out.push_back(std::move(c));
            }
          }
        }
      }
    }
  }
  return out;
}

// Simulates a candidate: exactly where its micro-batches are few, else at two
// smaller counts and extrapolated along the line through them (see search.h).
void simulate(const SearchRequest& r, int gpus_per_node, SearchCandidate& c) {
  const int64_t m = r.global_batch / (static_cast<int64_t>(c.dp) * c.micro_batch_size);
  const int64_t pp = c.pp;
  // Interleaving needs a multiple of pp micro-batches.
  const int64_t m2 = c.virtual_stages > 1 ? 2 * pp : std::max<int64_t>(2, pp + 1);
  const int64_t m3 = c.virtual_stages > 1 ? 3 * pp : m2 + 1;
  auto run_with = [&](int64_t microbatches) {
    scenario::TrainingRun run = scenario::run_training(
        microbatches == m
            ? c.scenario
            : scenario_for(r, gpus_per_node, c, microbatches * c.dp * c.micro_batch_size));
    if (!run.metrics) throw std::logic_error("search: a candidate that fits did not simulate");
    return *run.metrics;
  };
  const exec::TrainingMetrics sim = run_with(std::min(m, m3));
  c.step_time_s = sim.step_time_s;
  if (m > m3) {
    // Past the pipeline's fill, every micro-batch adds the same time.
    const double per_mb =
        (sim.step_time_s - run_with(m2).step_time_s) / static_cast<double>(m3 - m2);
    c.step_time_s += static_cast<double>(m - m3) * per_mb;
  }
  const double tokens = static_cast<double>(r.global_batch) * r.seq_len;
  c.tokens_per_s_per_gpu = tokens / c.step_time_s / r.gpus;
  // MFU scales inversely with step time at fixed model FLOPs per token.
  c.mfu = sim.mfu * sim.step_time_s / (c.step_time_s * sim.tokens_per_step / tokens);
  c.bottleneck = sim.bottleneck;
}

// What simulate() sets, for the rank that gathers the ranking.
std::string encode_outcome(const SearchCandidate& c) {
  return OutcomeWriter()
      .number(c.step_time_s)
      .number(c.tokens_per_s_per_gpu)
      .number(c.mfu)
      .text(c.bottleneck)
      .take();
}

void decode_outcome(const std::string& bytes, SearchCandidate& c) {
  OutcomeReader in(bytes);
  c.step_time_s = in.number();
  c.tokens_per_s_per_gpu = in.number();
  c.mfu = in.number();
  c.bottleneck = in.text();
  if (!in.done()) throw std::logic_error("search outcome: trailing bytes");
}

// A candidate that only adds work to another that fits cannot rank higher, so
// it is not simulated (counted as "dominated"): of one layout (everything
// but recompute and ZeRO), the ZeRO-1 candidate with the lightest recompute
// that fits dominates
//  - every ZeRO-1 candidate recomputing more: each of none, selective,
//    selective_moe and full re-runs a superset of the one before
//    (memory_model.h), with the same communication;
//  - every ZeRO-3 candidate recomputing as much or more: the same compute
//    plus Megatron-FSDP's gathers before every forward and backward and
//    reduce-scatters after every backward, where ZeRO-1 reduces and gathers
//    once per step.
// ZeRO-3 candidates are not pruned against each other: a heavier recompute
// also moves when their per-micro-batch gathers and reduce-scatters run
// (before the gathers were double-buffered, the DeepSeek-V3 search on 1,024
// H100s had 72 ZeRO-3 layouts faster with a heavier recompute).
int recompute_weight(const std::string& recompute) {
  if (recompute == "none") return 0;
  if (recompute == "selective") return 1;
  if (recompute == "selective_moe") return 2;
  return 3;  // full
}

void prune_dominated(const std::vector<SearchCandidate>& candidates, std::vector<size_t>& passed,
                     std::map<std::string, int>& rejected) {
  auto layout = [&](size_t i) {
    const SearchCandidate& c = candidates[i];
    return std::array<int, 8>{
        c.dp, c.tp, c.cp, c.pp, c.virtual_stages, c.ep, c.etp, c.micro_batch_size};
  };
  std::map<std::array<int, 8>, int> lightest_zero1;
  for (size_t i : passed) {
    if (candidates[i].zero_stage != 1) continue;
    const int w = recompute_weight(candidates[i].recompute);
    auto [it, inserted] = lightest_zero1.emplace(layout(i), w);
    if (!inserted) it->second = std::min(it->second, w);
  }
  const size_t before = passed.size();
  std::erase_if(passed, [&](size_t i) {
    const auto it = lightest_zero1.find(layout(i));
    if (it == lightest_zero1.end()) return false;
    const int w = recompute_weight(candidates[i].recompute);
    return candidates[i].zero_stage == 1 ? w > it->second : w >= it->second;
  });
  if (passed.size() < before) rejected["dominated"] += static_cast<int>(before - passed.size());
}

}  // namespace

SearchResult search_strategies(const SearchRequest& r, const ProgressFn& checking,
                               const ProgressFn& simulating) {
  const auto model = workloads::resolve_model(Json(r.model), "--model");
  workloads::make_generator(r.routing, model, 1, "--routing");  // a bad spec fails here, once
  const int gpus_per_node = hw::resolve_cluster(r.cluster, "--cluster").node.gpus_per_node;
  if (r.gpus % gpus_per_node != 0) {
    throw Error(
        fmt::format("--gpus: {} is not a multiple of the node size {}", r.gpus, gpus_per_node));
  }
  std::vector<SearchCandidate> candidates =
      enumerate(r, model.layers, model.routed_experts, gpus_per_node);
  SearchResult result;
  result.enumerated = static_cast<int>(candidates.size());
  // Validity and memory first (cheap), then simulate the survivors.
  result.ranking = check_then_simulate(
      candidates, r.jobs, r.processes, checking, simulating, result.rejected,
      [](SearchCandidate& c) {
        const scenario::ScenarioCheck check = scenario::check_scenario(c.scenario);
        if (check.valid)
          c.memory_headroom_bytes = check.memory_capacity_bytes - check.peak_memory_bytes;
        return check;
      },
      [&](SearchCandidate& c) { simulate(r, gpus_per_node, c); },
      OutcomeCodec<SearchCandidate>{encode_outcome, decode_outcome}, prune_dominated);
  std::stable_sort(result.ranking.begin(), result.ranking.end(),
                   [](const SearchCandidate& a, const SearchCandidate& b) {
                     return a.tokens_per_s_per_gpu > b.tokens_per_s_per_gpu;
                   });
  return result;
}

}  // namespace moesim::explore
