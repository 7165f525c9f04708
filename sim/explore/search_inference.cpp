#include "sim/explore/search_inference.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>

#include "hwmodels/cluster.h"
#include "sim/core/error.h"
#include "sim/explore/candidate_pass.h"
#include "sim/scenario/inference_run.h"
#include "sim/scenario/strategy.h"
#include "workloads/model_config.h"
#include "workloads/requests.h"
#include "workloads/routing_generator.h"

namespace moesim::explore {
namespace {

void validate(const InferenceSearchRequest& r) {
  if (r.gpus < 1) throw Error("--gpus: expected a positive integer");
  if (r.dtype != "bf16" && r.dtype != "fp8") {
    throw Error(fmt::format("--dtype: expected bf16 or fp8, got '{}'", r.dtype));
  }
  if ((r.rate_per_s != 0) == (r.concurrency != 0)) {
    throw Error(
        "--requests-rate / --concurrency: give exactly one (Poisson arrivals at a rate, or a "
        "closed loop keeping that many requests in flight)");
  }
  if (r.rate_per_s != 0 && !(r.rate_per_s > 0 && std::isfinite(r.rate_per_s))) {
    throw Error(
        fmt::format("--requests-rate: expected requests per second > 0, got {}", r.rate_per_s));
  }
  if (r.concurrency < 0) {
    throw Error(fmt::format("--concurrency: expected a positive integer, got {}", r.concurrency));
  }
  if (r.requests < 1 || r.requests > workloads::kMaxRequests) {
    throw Error(fmt::format("--requests: expected an integer in [1, {}], got {}",
                            workloads::kMaxRequests, r.requests));
  }
  for (const auto& [flag, low, high] :
       {std::tuple{"--input-tokens", r.input_tokens, r.input_tokens_upper()},
        {"--output-tokens", r.output_tokens, r.output_tokens_upper()}}) {
    for (int64_t tokens : {low, high}) {
      if (tokens < 1 || tokens > workloads::kMaxRequestTokens) {
        throw Error(fmt::format("{}: expected an integer in [1, {}], got {}", flag,
                                workloads::kMaxRequestTokens, tokens));
      }
    }
    if (high < low) {
      throw Error(
          fmt::format("{}: the range's maximum {} is below its minimum {}", flag, high, low));
    }
  }
  if (!(r.slo_tpot_ms > 0 && std::isfinite(r.slo_tpot_ms))) {
    throw Error(
        "--slo-tpot-ms: required with --mode inference (milliseconds > 0; goodput counts the "
        "requests meeting it)");
  }
  if (!(r.slo_ttft_ms >= 0 && std::isfinite(r.slo_ttft_ms))) {
    throw Error(fmt::format("--slo-ttft-ms: expected milliseconds > 0, got {}", r.slo_ttft_ms));
  }
  if (r.max_batch_sizes.empty()) throw Error("--max-batch-sizes: give at least one size");
  for (int b : r.max_batch_sizes) {
    if (b < 1) throw Error(fmt::format("--max-batch-sizes: expected sizes >= 1, got {}", b));
  }
  if (r.redundant_experts.empty()) throw Error("--redundant-experts: give at least one count");
  for (int e : r.redundant_experts) {
    if (e < 0 || e > workloads::kMaxRoutedExperts) {
      throw Error(fmt::format("--redundant-experts: expected counts in [0, {}], got {}",
                              workloads::kMaxRoutedExperts, e));
    }
  }
  if (r.max_layouts < 1 || r.max_layouts > kMaxServingLayouts) {
    throw Error(fmt::format("--max-layouts: expected an integer in [1, {}], got {}",
                            kMaxServingLayouts, r.max_layouts));
  }
  if (r.jobs < 1 || r.jobs > 256) throw Error("--jobs: expected an integer in [1, 256]");
}

Json instances_json(int tp, int attention_dp, int ep, int instances) {
  return Json{{"tp", tp},
              {"attention_dp", attention_dp},
              {"ep", ep},
              {"instances", instances},
              {"a2a_algo", "auto"}};
}

Json scenario_for(const InferenceSearchRequest& r, int gpus_per_node, const InferenceLayout& l) {
  Json cluster = r.cluster.is_string() ? Json{{"preset", r.cluster}} : r.cluster;
  cluster["nodes"] = r.gpus / gpus_per_node;
  Json slo{{"tpot_ms", r.slo_tpot_ms}};
  if (r.slo_ttft_ms > 0) slo["ttft_ms"] = r.slo_ttft_ms;
  auto role = [](const InferenceInstances& i) {
    return Json{{"nodes", i.nodes},
                {"parallel", instances_json(i.tp, i.attention_dp, i.ep, i.instances)}};
  };
  Json doc{{"model", r.model},
           {"cluster", cluster},
           {"workload", {{"mode", "inference"}, {"dtype", r.dtype}}},
           {"parallel", l.disaggregated
                            ? Json{{"disaggregation",
                                    {{"prefill", role(l.prefill)}, {"decode", role(l.decode)}}}}
                            : instances_json(l.tp, l.attention_dp, l.ep, l.instances)},
           {"serving",
            {{"max_batch_size", l.max_batch_size},
             {"two_batch_overlap", l.two_batch_overlap},
             {"slo", slo}}},
           {"requests", inference_search_requests(r)},
           {"routing", {{"generator", r.routing}, {"seed", 1}}}};
  if (l.redundant_experts > 0) doc["gating"] = {{"redundant_experts", l.redundant_experts}};
  return doc;
}

// Every choice of the knobs a layout shares (overlap, batch size, EPLB
// replicas) for one instance shape; `all_to_all`: its ep exceeds 1.
void add_choices(const InferenceSearchRequest& r, InferenceLayout shape, bool all_to_all,
                 std::vector<InferenceLayout>& out) {
  for (bool overlap : {false, true}) {
    if (overlap && !all_to_all) continue;
    for (int batch : r.max_batch_sizes) {
      for (int replicas : r.redundant_experts) {
        if (replicas > 0 && !all_to_all) continue;
        shape.two_batch_overlap = overlap;
        shape.max_batch_size = batch;
        shape.redundant_experts = replicas;
        if (static_cast<int64_t>(out.size()) == r.max_layouts) {
          throw Error(fmt::format(
              "--max-layouts: the search has more than {} layouts ({}prefill/decode splits, "
              "instance sizes, overlap, batch sizes and replica counts); search fewer GPUs or "
              "choices, or raise --max-layouts (at most {})",
              r.max_layouts, r.disaggregation ? "" : "no ", kMaxServingLayouts));
        }
        out.push_back(shape);
      }
    }
  }
}

// A role of `nodes` nodes as instances of `per_instance` nodes each, SGLang's
// large-EP shape: tp 1, attention and experts over all of an instance's GPUs.
InferenceInstances large_ep_role(int nodes, int per_instance, int gpus_per_node) {
  InferenceInstances i;
  i.nodes = nodes;
  i.attention_dp = i.ep = per_instance * gpus_per_node;
  i.instances = nodes / per_instance;
  return i;
}

std::vector<InferenceLayout> enumerate(const InferenceSearchRequest& r, int heads,
                                       int gpus_per_node) {
  std::vector<InferenceLayout> out;
  for (int tp = 1; tp <= gpus_per_node; tp *= 2) {
    if (gpus_per_node % tp != 0 || heads % tp != 0 || r.gpus % tp != 0) continue;
    for (int attention_dp : divisors(r.gpus / tp)) {
      const std::vector<int> eps =
          attention_dp == 1 ? divisors(tp) : std::vector<int>{tp * attention_dp};
      for (int ep : eps) {
        InferenceLayout l;
        l.tp = tp;
        l.attention_dp = attention_dp;
        l.ep = ep;
        l.instances = r.gpus / (tp * attention_dp);
        add_choices(r, l, ep > 1, out);
      }
    }
  }
  if (!r.disaggregation) return out;
  const int nodes = r.gpus / gpus_per_node;
  for (int prefill_nodes = 1; prefill_nodes < nodes; ++prefill_nodes) {
    const int decode_nodes = nodes - prefill_nodes;
    for (int prefill_size : divisors(prefill_nodes)) {
      for (int decode_size : divisors(decode_nodes)) {
        InferenceLayout l;
        l.disaggregated = true;
        l.prefill = large_ep_role(prefill_nodes, prefill_size, gpus_per_node);
        l.decode = large_ep_role(decode_nodes, decode_size, gpus_per_node);
        add_choices(r, l, l.prefill.ep > 1 || l.decode.ep > 1, out);
      }
    }
  }
  return out;
}

void simulate(InferenceCandidate& c) {
  const scenario::InferenceRun run = scenario::run_inference(c.scenario);
  if (!run.metrics) throw std::logic_error("search: a layout that fits did not simulate");
  const exec::ServingMetrics& m = *run.metrics;
  c.goodput_requests_per_s = m.goodput_requests_per_s;
  c.goodput_requests_per_s_per_gpu = m.goodput_requests_per_s_per_gpu;
  c.output_tokens_per_s_per_gpu = m.output_tokens_per_s_per_gpu;
  c.ttft_p99_s = m.ttft.p99_s;
  c.tpot_p99_s = m.tpot.p99_s;
  c.slo_attainment = m.slo_attainment;
  c.kv_peak_utilisation = m.kv_peak_utilisation;
}

// What simulate() sets, for the rank that gathers the ranking.
std::string encode_outcome(const InferenceCandidate& c) {
  return OutcomeWriter()
      .number(c.goodput_requests_per_s)
      .number(c.goodput_requests_per_s_per_gpu)
      .number(c.output_tokens_per_s_per_gpu)
      .number(c.ttft_p99_s)
      .number(c.tpot_p99_s)
      .number(c.slo_attainment)
      .number(c.kv_peak_utilisation)
      .take();
}

void decode_outcome(const std::string& bytes, InferenceCandidate& c) {
  OutcomeReader in(bytes);
  c.goodput_requests_per_s = in.number();
  c.goodput_requests_per_s_per_gpu = in.number();
  c.output_tokens_per_s_per_gpu = in.number();
  c.ttft_p99_s = in.number();
  c.tpot_p99_s = in.number();
  c.slo_attainment = in.number();
  c.kv_peak_utilisation = in.number();
  if (!in.done()) throw std::logic_error("search outcome: trailing bytes");
}

}  // namespace

Json inference_search_requests(const InferenceSearchRequest& r) {
  Json load{{"count", r.requests}};
  if (r.concurrency > 0) {
    load["arrival"] = "closed";
    load["concurrency"] = r.concurrency;
  } else {
    load["arrival"] = "poisson";
    load["rate_per_s"] = r.rate_per_s;
  }
  auto length = [](int64_t low, int64_t high) {
    return low == high ? Json(low) : Json{{"dist", "uniform"}, {"min", low}, {"max", high}};
  };
  load["input_tokens"] = length(r.input_tokens, r.input_tokens_upper());
  load["output_tokens"] = length(r.output_tokens, r.output_tokens_upper());
  load["seed"] = 1;
  return load;
}

InferenceSearchResult search_inference_layouts(const InferenceSearchRequest& r,
                                               const ProgressFn& checking,
                                               const ProgressFn& simulating) {
  validate(r);
  const auto model = workloads::resolve_model(Json(r.model), "--model");
  workloads::make_generator(r.routing, model, 1, "--routing");  // a bad spec fails here, once
  const int gpus_per_node = hw::resolve_cluster(r.cluster, "--cluster").node.gpus_per_node;
  if (r.gpus % gpus_per_node != 0) {
    throw Error(
        fmt::format("--gpus: {} is not a multiple of the node size {}", r.gpus, gpus_per_node));
  }
  std::vector<InferenceCandidate> candidates;
  for (const InferenceLayout& l : enumerate(r, model.heads, gpus_per_node)) {
    InferenceCandidate c;
    c.layout = l;
    c.scenario = scenario_for(r, gpus_per_node, l);
    candidates.push_back(std::move(c));
  }
  InferenceSearchResult result;
  result.warnings = scenario::closed_loop_warnings(
      workloads::parse_request_load(inference_search_requests(r), "requests"), false,
      {"--requests", "--concurrency", "--output-tokens"});
  result.enumerated = static_cast<int>(candidates.size());
  // Rules and memory first (no simulation), then simulate the survivors.
  result.ranking = check_then_simulate(
      candidates, r.jobs, r.processes, checking, simulating, result.rejected,
      [](InferenceCandidate& c) { return scenario::check_inference(c.scenario); }, simulate,
      OutcomeCodec<InferenceCandidate>{encode_outcome, decode_outcome});
  std::stable_sort(result.ranking.begin(), result.ranking.end(),
                   [](const InferenceCandidate& a, const InferenceCandidate& b) {
                     if (a.goodput_requests_per_s_per_gpu != b.goodput_requests_per_s_per_gpu) {
                       return a.goodput_requests_per_s_per_gpu > b.goodput_requests_per_s_per_gpu;
                     }
                     return a.output_tokens_per_s_per_gpu > b.output_tokens_per_s_per_gpu;
                   });
  return result;
}

}  // namespace moesim::explore
