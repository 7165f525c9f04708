#include "sim/scenario/inference_run.h"

#include <algorithm>
#include <memory>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

#include "sim/collectives/analytic.h"
#include "sim/core/error.h"
#include "sim/scenario/serving_routing.h"
#include "sim/scenario/strategy.h"
#include "workloads/routing_generator.h"

namespace moesim::scenario {
namespace {

std::string_view role_label(exec::InstanceRole role) {
  switch (role) {
    case exec::InstanceRole::kMixed:
      return "serving";
    case exec::InstanceRole::kPrefill:
      return "prefill";
    case exec::InstanceRole::kDecode:
      return "decode";
  }
  return "serving";
}

// The iteration cost model of one instance of `group`.
std::unique_ptr<exec::InferenceCostModel> instance_cost_model(const InferenceScenario& s,
                                                              const InstanceGroup& group,
                                                              int instance,
                                                              const hw::ComputeCostModel& compute) {
  std::vector<int> ranks(group.parallel.gpus());
  std::iota(ranks.begin(), ranks.end(), group.first_gpu(instance));
  const hw::ClusterSpec* cluster = &s.cluster;
  return std::make_unique<exec::InferenceCostModel>(
      s.shape, group.parallel, s.dtype, s.kv_dtype, compute,
      [cluster](const coll::Collective& c) { return coll::collective_seconds(*cluster, c); },
      std::move(ranks), s.cluster.gpu.sms);
}

// DeepEP's low-latency buffer is allocated where decode-only iterations can
// dispatch with it: sized for the tokens one rank sends per call (one
// micro-batch of a replica's running requests).
int64_t low_latency_tokens_per_rank(const InferenceScenario& s, const InstanceGroup& g) {
  const exec::InferenceParallel& p = g.parallel;
  const bool low_latency = p.a2a_algo == coll::AllToAllAlgorithm::kLowLatency ||
                           (p.a2a_auto && g.role != exec::InstanceRole::kPrefill);
  if (!low_latency || p.ep <= 1) return 0;
  const int64_t per_rank = (s.serving.max_batch_size + p.tp - 1) / p.tp;
  return p.two_batch_overlap ? (per_rank + 1) / 2 : per_rank;
}

InferenceGroupMemory group_memory(const InferenceScenario& s, const InstanceGroup& g,
                                  const exec::InferenceCostModel& cost) {
  InferenceGroupMemory out;
  out.role = g.role;
  out.kv_bytes_per_token_per_gpu = cost.kv_bytes_per_token_per_gpu();
  out.low_latency_tokens_per_rank = low_latency_tokens_per_rank(s, g);
  exec::InferenceMemoryInputs in;
  in.linear_weight_bits = 8 * hw::bytes_per_element(s.dtype);
  in.expert_weight_bits =
      s.model.expert_weight_bits > 0 ? s.model.expert_weight_bits : in.linear_weight_bits;
  in.max_num_tokens = s.serving.max_num_tokens;
  in.max_batch_size = s.serving.max_batch_size;
  in.low_latency_buffer = out.low_latency_tokens_per_rank > 0;
  in.low_latency_tokens_per_rank = out.low_latency_tokens_per_rank;
  in.kv_bytes_per_token_per_gpu = out.kv_bytes_per_token_per_gpu;
  in.kv_block_tokens = s.serving.kv_block_tokens;
  in.hbm_bytes = s.cluster.gpu.hbm_bytes;
  in.reserved_bytes = s.options.reserved_memory_bytes;
  out.memory = exec::estimate_inference_memory(s.shape, g.parallel, in);
  return out;
}

struct Prepared {
  InferenceScenario scenario;
  std::unique_ptr<hw::ComputeCostModel> compute;
  std::vector<InferenceGroupMemory> memory;
  bool fits = true;
};

Prepared prepare(const Json& doc) {
  Prepared p;
  p.scenario = resolve_inference_scenario(doc);
  const InferenceScenario& s = p.scenario;
  p.compute = compute_cost_model(s.cluster.gpu, s.options.compute_calibration);
  for (const InstanceGroup& g : s.groups) {
    const auto cost = instance_cost_model(s, g, 0, *p.compute);
    p.memory.push_back(group_memory(s, g, *cost));
    p.fits = p.fits && p.memory.back().memory.fits();
  }
  return p;
}

// The most KV blocks a request holds alone: while its prompt is computed
// (whole, or serving.chunked_prefill tokens at a time at most) and while it
// decodes (unless `prompt_only`).
int64_t peak_kv_blocks(const InferenceScenario& s, const workloads::Request& r, bool prompt_only) {
  const int64_t block = s.serving.kv_block_tokens, chunk = s.serving.chunked_prefill;
  const int64_t step = chunk > 0 ? std::min(chunk, r.input_tokens) : r.input_tokens;
  int64_t peak = s.shape.max_kv_blocks(r.input_tokens, std::max<int64_t>(step, 1), block);
  if (prompt_only || r.output_tokens <= 0) return peak;
  return std::max(peak, s.shape.max_kv_blocks(r.input_tokens + r.output_tokens, 1, block));
}

// Every request must fit alone in one attention replica's KV cache, or the
// scheduler could never run it.
void check_kv_capacity(const InferenceScenario& s,
                       const std::vector<InferenceGroupMemory>& memory) {
  const int64_t block = s.serving.kv_block_tokens;
  for (size_t g = 0; g < memory.size(); ++g) {
    const int64_t capacity = memory[g].memory.kv_blocks;
    const bool prompt_only = memory[g].role == exec::InstanceRole::kPrefill;
    for (size_t i = 0; i < s.requests.requests.size(); ++i) {
      const workloads::Request& r = s.requests.requests[i];
      const int64_t blocks = peak_kv_blocks(s, r, prompt_only);
      if (blocks <= capacity) continue;
      throw InvalidStrategy(
          "kv_capacity",
          fmt::format("requests: request {} (in arrival order; {} input + {} output tokens) needs "
                      "{} KV blocks of {} tokens, but a {} replica's GPUs hold {} ({:.3g} GiB of "
                      "KV cache each); shorten the requests, raise tp or lower "
                      "serving.max_num_tokens",
                      i, r.input_tokens, r.output_tokens, blocks, block, role_label(memory[g].role),
                      capacity, memory[g].memory.kv_cache_bytes / (1ull << 30)));
    }
  }
}

// Everything the serving simulation reads, and what it points into.
struct ServingWorld {
  std::vector<std::unique_ptr<exec::InferenceCostModel>> costs;
  std::unique_ptr<ServingRoutingPool> routing_pool;  // before the routings that point into it
  std::vector<std::unique_ptr<ServingRouting>> routings;
  exec::ServingSetup setup;
};

// What every instance's routing of the run shares.
std::unique_ptr<ServingRoutingPool> routing_pool(const InferenceScenario& s) {
  return std::make_unique<ServingRoutingPool>(
      s.model, s.gating,
      workloads::make_generator(s.routing.generator, s.model, s.routing.seed, "routing.generator"),
      s.routing.seed, s.options.routing_samples, s.options.max_routings_per_iteration);
}

// The per-iteration routing of instance `k` of group `g`, the
// `instance_index`-th of the scenario (instances draw distinct batches).
std::unique_ptr<ServingRouting> instance_routing(const InferenceScenario& s, const InstanceGroup& g,
                                                 int k, int instance_index,
                                                 ServingRoutingPool& pool) {
  return std::make_unique<ServingRouting>(pool, instance_index, g.ep_rank_nodes(s.cluster, k));
}

// A load that needs more iterations than options.max_iterations allows is
// refused before it runs (it would run for the whole limit, then fail).
void check_iteration_limit(const InferenceScenario& s, const exec::IterationFloor& floor) {
  if (s.options.max_iterations == 0 || floor.iterations <= s.options.max_iterations) return;
  throw Error(fmt::format(
      "options.max_iterations: serving these requests takes at least {} iterations ({} tokens "
      "to generate, at most {} per iteration; {} prompt tokens, at most {} per iteration; the "
      "longest request {} in a row), more than the limit of {}; raise it or serve fewer or "
      "shorter requests",
      floor.iterations, floor.tokens, floor.tokens_per_iteration, floor.prompt_tokens,
      floor.prompt_tokens_per_iteration, floor.longest_request, s.options.max_iterations));
}

// The schedule's side of the run: the serving config, the instances' roles,
// replicas and KV blocks (no cost model or routing yet: attach_models adds
// them), and the prompt caches' transfer: everything min_serving_iterations
// reads.
exec::ServingSetup serving_setup(const InferenceScenario& s,
                                 const std::vector<InferenceGroupMemory>& memory) {
  exec::ServingSetup setup;
  setup.config = s.serving;
  setup.concurrency =
      s.requests.arrival == workloads::RequestLoad::Arrival::kClosed ? s.requests.concurrency : 0;
  setup.host_link_bytes_per_s = s.cluster.node.pcie_bytes_per_s;
  setup.max_iterations = s.options.max_iterations;
  setup.recorded_iterations = s.options.timeline_iterations;
  for (size_t gi = 0; gi < s.groups.size(); ++gi) {
    const InstanceGroup& g = s.groups[gi];
    for (int k = 0; k < g.instances; ++k) {
      setup.instances.push_back({g.role, g.parallel.attention_dp, g.parallel.gpus(),
                                 memory[gi].memory.kv_blocks, nullptr, nullptr});
    }
  }
  if (s.groups.size() == 2) {
    // A prompt's cache moves GPU to GPU: each prefill GPU sends its shard to
    // its decode peer, all pairs at once, so one pair's transfer sets the time.
    const int source = s.groups[0].first_gpu(0), target = s.groups[1].first_gpu(0);
    const double bytes_per_token = memory[0].kv_bytes_per_token_per_gpu;
    const hw::ClusterSpec* cluster = &s.cluster;
    const exec::ModelShape* shape = &s.shape;  // windowed layers move their window only
    setup.kv_transfer_seconds = [=](int64_t tokens) {
      return coll::send_recv_seconds(*cluster, source, target,
                                     shape->kv_cached_tokens(tokens) * bytes_per_token);
    };
  }
  return setup;
}

// Each instance's cost model and routing, in serving_setup's instance order.
void attach_models(const InferenceScenario& s, const hw::ComputeCostModel& compute,
                   ServingWorld& world) {
  world.routing_pool = routing_pool(s);
  size_t instance_index = 0;
  for (const InstanceGroup& g : s.groups) {
    for (int k = 0; k < g.instances; ++k, ++instance_index) {
      world.costs.push_back(instance_cost_model(s, g, k, compute));
      world.routings.push_back(
          instance_routing(s, g, k, static_cast<int>(instance_index), *world.routing_pool));
      exec::ServingInstance& instance = world.setup.instances[instance_index];
      instance.cost = world.costs.back().get();
      instance.routing = world.routings.back().get();
    }
  }
}

void add_warnings(const InferenceScenario& s, const ServingWorld& world, InferenceRun& run) {
  if (world.routing_pool->subsampled()) {
    run.warnings.push_back(fmt::format(
        "routing subsampled: iterations with more than options.max_routings_per_iteration = {} "
        "token copies route a sample and scale its counts",
        s.options.max_routings_per_iteration));
  }
  if (run.experts.drop_rate > kDropWarningRate) {
    run.warnings.push_back(fmt::format(
        "capacity dropped {:.3g}% of routed token copies (raise gating.capacity_factor or use "
        "\"dropless\")",
        100 * run.experts.drop_rate));
  }
  if (s.groups.size() == 1 && s.groups[0].role == exec::InstanceRole::kDecode) {
    run.warnings.push_back(
        "decode instances only: every request starts with its prompt's KV cache in place and its "
        "first token given (TTFT counts the wait for a decode slot only)");
  }
  const bool prefill_only =
      s.groups.size() == 1 && s.groups[0].role == exec::InstanceRole::kPrefill;
  if (prefill_only) {
    run.warnings.push_back(
        "prefill instances only: every request ends at its first token (output tokens/s counts "
        "first tokens only)");
  }
  for (std::string& w : closed_loop_warnings(s.requests, prefill_only)) {
    run.warnings.push_back(std::move(w));
  }
  if (run.metrics && run.metrics->swap_fallbacks > 0) {
    run.warnings.push_back(fmt::format(
        "swap space full: {} of {} preemptions recomputed their request, the host swap space "
        "(serving.swap_space_gib = {:g} per GPU) having no room for its cache; vLLM would abort "
        "the engine here",
        run.metrics->swap_fallbacks, run.metrics->preemptions,
        s.serving.swap_space_bytes / (1ull << 30)));
  }
  if (s.model.mtp_layers > 0) {
    run.warnings.push_back(fmt::format(
        "model.mtp_layers = {}: the MTP modules are not served (they only draft tokens for "
        "speculative decoding, which moesim does not model); their weights take no memory here",
        s.model.mtp_layers));
  }
  run.warnings.push_back(
      "network model: analytic (each collective of an iteration timed alone from its bottleneck "
      "links)");
}

}  // namespace

PrefillParts prefill_parts(const Json& doc, int64_t tokens_per_replica, int64_t prompt_tokens) {
  if (tokens_per_replica < 1 || prompt_tokens < 1) {
    throw std::invalid_argument("prefill_parts: tokens per replica and per prompt must be >= 1");
  }
  const Prepared p = prepare(doc);
  const InferenceScenario& s = p.scenario;
  const InstanceGroup& g = s.groups.front();
  const auto cost = instance_cost_model(s, g, 0, *p.compute);
  const std::unique_ptr<ServingRoutingPool> pool = routing_pool(s);
  const std::unique_ptr<ServingRouting> routing = instance_routing(s, g, 0, 0, *pool);
  exec::ReplicaBatch batch;
  for (int64_t t = 0; t < tokens_per_replica; t += prompt_tokens)
    batch.prefill.push_back({std::min(prompt_tokens, tokens_per_replica - t), 0});
  batch.sampled = static_cast<int64_t>(batch.prefill.size());
  const std::vector<exec::ReplicaBatch> replicas(g.parallel.attention_dp, batch);
  PrefillParts out;
  out.layers = s.shape.layers;
  for (const auto& micro_batch : cost->layer_parts(replicas, *routing, 0)) {
    for (const exec::LayerCost& l : micro_batch) {
      out.attention_core_s += l.attention_core;
      out.routed_experts_s += l.expert;
      out.linear_gemm_s += l.attention_prep_gemm + l.shared_gemm + l.dense_gemm;
      out.compute_s +=
          l.attention_prep + l.attention_core + l.router + l.shared + l.dense + l.expert;
      out.dispatch_s += l.dispatch;
      out.combine_s += l.combine;
    }
  }
  return out;
}

std::vector<std::string> closed_loop_warnings(const workloads::RequestLoad& load, bool prefill_only,
                                              const LoadFieldNames& names) {
  std::vector<std::string> out;
  if (load.arrival != workloads::RequestLoad::Arrival::kClosed || load.requests.empty()) return out;
  const auto count = static_cast<int64_t>(load.requests.size());
  if (count < 2 * int64_t{load.concurrency}) {
    out.push_back(fmt::format(
        "{} ({}) is under twice {} ({}): most requests arrive at once, so the figures describe "
        "that burst more than a steady state",
        names.count, count, names.concurrency, load.concurrency));
  }
  const int64_t first = load.requests.front().output_tokens;
  if (!prefill_only && count > load.concurrency &&
      std::all_of(load.requests.begin(), load.requests.end(),
                  [&](const workloads::Request& r) { return r.output_tokens == first; })) {
    out.push_back(fmt::format(
        "{} is one length in a closed loop: requests admitted together finish and are replaced "
        "together, so the load comes in waves (vary the lengths for a steady state)",
        names.output_tokens));
  }
  return out;
}

// EPLB replicas on a layout without expert parallelism: its GPUs hold every
// expert already, so a replica balances nothing and only takes memory. Not an
// error: gating is one section for every role, and a TP decode role may sit
// beside an expert-parallel prefill role that uses the replicas.
void warn_replicas_without_ep(const InferenceScenario& s, InferenceRun& run) {
  const int redundant = s.gating.redundant_experts;
  if (redundant == 0 || s.model.routed_experts == 0) return;
  for (size_t g = 0; g < s.groups.size(); ++g) {
    if (s.groups[g].parallel.ep > 1) continue;
    const double replica_bytes =
        run.memory[g].memory.expert_weight_bytes * redundant / (s.model.routed_experts + redundant);
    run.warnings.push_back(fmt::format(
        "gating.redundant_experts = {}: the {} instances have ep 1, so each GPU holds every "
        "expert and the replicas balance nothing; they take {:.1f} GiB of weights per GPU",
        redundant, role_label(s.groups[g].role), replica_bytes / (1ull << 30)));
  }
}

InferenceRun run_inference(const Json& doc, const ProgressFn& progress) {
  Prepared p = prepare(doc);
  InferenceRun run;
  run.scenario = std::move(p.scenario);
  run.memory = p.memory;
  const InferenceScenario& s = run.scenario;
  warn_replicas_without_ep(s, run);
  if (!p.fits) {
    for (const InferenceGroupMemory& m : run.memory) {
      if (m.memory.fits()) continue;
      run.warnings.push_back(fmt::format(
          "out of memory: the {} instances' weights and working memory take {:.1f} GiB of {:.1f} "
          "GiB per GPU, leaving no KV block; nothing was simulated (see memory)",
          role_label(m.role), m.memory.used_bytes_before_kv() / (1ull << 30),
          m.memory.capacity_bytes / (1ull << 30)));
    }
    return run;
  }
  check_kv_capacity(s, run.memory);
  ServingWorld world;
  world.setup = serving_setup(s, run.memory);
  std::vector<exec::ServingRequest> requests;
  requests.reserve(s.requests.requests.size());
  for (const workloads::Request& r : s.requests.requests) {
    requests.push_back({r.arrival_s, r.input_tokens, r.output_tokens});
  }
  // Refused before any instance builds its cost model or routing.
  check_iteration_limit(s, exec::min_serving_iterations(world.setup, requests));
  attach_models(s, *p.compute, world);
  world.setup.progress = progress;
  run.result = exec::simulate_serving(world.setup, std::move(requests));
  if (run.result.truncated) {
    throw Error(fmt::format(
        "options.max_iterations: the run reached {} iterations before every request finished; "
        "raise it or serve fewer requests",
        s.options.max_iterations));
  }
  run.metrics =
      exec::serving_metrics(run.result, s.serving, s.gpus(), s.cluster.node.gpus_per_node);
  run.experts = expert_stats(world.routing_pool->load());
  add_warnings(s, world, run);
  return run;
}

ScenarioCheck check_inference(const Json& doc) {
  ScenarioCheck c;
  try {
    Prepared p = prepare(doc);
    c.memory_capacity_bytes = p.scenario.cluster.gpu.hbm_bytes;
    for (const InferenceGroupMemory& m : p.memory) {
      c.peak_memory_bytes = std::max(c.peak_memory_bytes, m.memory.used_bytes_before_kv());
    }
    if (!p.fits) {
      c.reason_code = "out_of_memory";
      c.reason = "the weights and working memory leave no room for a KV block";
      return c;
    }
    check_kv_capacity(p.scenario, p.memory);
    c.valid = true;
  } catch (const InvalidStrategy& e) {
    c.reason_code = e.code();
    c.reason = e.what();
  }
  return c;
}

}  // namespace moesim::scenario
