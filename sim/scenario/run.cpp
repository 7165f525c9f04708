#include "sim/scenario/run.h"

#include <algorithm>
#include <numeric>
#include <string>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/exec/step_builder.h"
#include "sim/scenario/strategy.h"

namespace moesim::scenario {
namespace {

struct Prepared {
  Scenario scenario;
  std::shared_ptr<const RoutingPlan> routing;
  exec::MemoryEstimate memory;
};

Prepared prepare(const Json& doc) {
  Prepared p{resolve_scenario(doc), {}, {}};
  p.routing = cached_routing_plan(routing_key(p.scenario));
  const auto& setup = p.scenario.setup;
  p.memory = exec::estimate_memory(setup.model, setup.parallel, setup.workload,
                                   exec::routed_copies_per_gpu(p.routing->routing),
                                   setup.hbm_capacity_bytes, setup.reserved_memory_bytes);
  const hw::NodeSpec& node = p.scenario.cluster.node;
  p.memory.host_capacity_bytes = node.host_memory_bytes / node.gpus_per_node;
  return p;
}

std::string host_memory_warning(const exec::MemoryEstimate& m, int gpus_per_node) {
  return fmt::format(
      "out of host memory: offloaded activations take up to {:.1f} GB of pinned host memory per "
      "GPU, {:.1f} GB for a node's {} GPUs, more than cluster node.host_memory_gb = {:.4g}; the "
      "step was not simulated (see memory.per_stage[].host_offload_bytes)",
      m.host_offload_peak_bytes / 1e9, m.host_offload_peak_bytes * gpus_per_node / 1e9,
      gpus_per_node, m.host_capacity_bytes * gpus_per_node / 1e9);
}

}  // namespace

ExpertStats expert_stats(const RoutingPlan& plan) {
  return expert_stats(plan.layers);
}

ExpertStats expert_stats(std::span<const LayerLoad> layers) {
  ExpertStats out;
  for (const auto& l : layers) {
    ExpertLayerStats e;
    e.layer = l.layer;
    e.load = l.load;
    e.tokens_routed = std::accumulate(l.load.begin(), l.load.end(), int64_t{0});
    e.tokens_dropped = l.dropped;
    const int64_t most = l.load.empty() ? 0 : *std::max_element(l.load.begin(), l.load.end());
    const double mean = l.load.empty() ? 0 : static_cast<double>(e.tokens_routed) / l.load.size();
    e.max_over_mean_load = mean > 0 ? most / mean : 0;
    out.max_over_mean_load = std::max(out.max_over_mean_load, e.max_over_mean_load);
    out.tokens_routed += e.tokens_routed;
    out.tokens_dropped += e.tokens_dropped;
    out.layers.push_back(std::move(e));
  }
  const int64_t offered = out.tokens_routed + out.tokens_dropped;
  out.drop_rate = offered > 0 ? static_cast<double>(out.tokens_dropped) / offered : 0.0;
  return out;
}

TrainingRun run_training(const Json& doc, const ProgressFn& progress) {
  Prepared p = prepare(doc);
  TrainingRun run;
  run.scenario = std::move(p.scenario);
  run.memory = p.memory;
  run.experts = expert_stats(*p.routing);
  run.warnings = p.routing->warnings;
  if (run.experts.drop_rate > kDropWarningRate) {
    run.warnings.push_back(fmt::format(
        "capacity dropped {:.3g}% of routed token copies: step time and MFU count only the expert "
        "work done (raise gating.capacity_factor or use \"dropless\")",
        100 * run.experts.drop_rate));
  }
  const Scenario& s = run.scenario;
  if (s.gating.redundant_experts > 0 && s.model.routed_experts > 0 && s.setup.parallel.ep == 1) {
    // Every GPU holds every expert already: a replica only takes memory.
    run.warnings.push_back(fmt::format(
        "gating.redundant_experts = {} with parallel.ep 1: each GPU holds every expert, so the "
        "replicas balance nothing and only add expert weights, gradients and optimizer state",
        s.gating.redundant_experts));
  }
  if (!p.memory.fits_hbm()) {
    run.warnings.push_back("out of memory: the step was not simulated (see memory.per_stage)");
    return run;
  }
  if (!p.memory.fits_host()) {
    run.warnings.push_back(host_memory_warning(p.memory, s.cluster.node.gpus_per_node));
    return run;
  }
  const double tasks =
      exec::estimated_step_tasks(s.setup.model, s.setup.parallel, s.setup.workload);
  if (tasks > s.options.max_tasks_per_step) {
    throw Error(fmt::format(
        "workload.global_batch: {} sequences make one step about {:.3g} tasks ({} GPUs x {} "
        "micro-batches x {} layers), more than options.max_tasks_per_step = {:.3g} (~{:.0f} GB); "
        "lower the batch or raise the limit",
        s.setup.workload.global_batch, tasks, s.setup.parallel.gpus(),
        s.setup.workload.microbatches(s.setup.parallel), s.setup.model.layers,
        s.options.max_tasks_per_step, s.options.max_tasks_per_step * 65 / 1e9));
  }
  const std::unique_ptr<hw::ComputeCostModel> compute = compute_cost_model(s);
  const coll::NetworkModel model = s.options.network_model;
  const exec::HardwareCosts costs{compute.get(), [&](Engine& engine) {
                                    return coll::make_collective_timer(model, engine, s.cluster);
                                  }};
  run.result = exec::simulate_training(s.setup, p.routing->routing, costs, progress);
  run.metrics = exec::training_metrics(s.setup, run.result);
  run.warnings.push_back(
      model == coll::NetworkModel::kFlow
          ? "network model: flow (every transfer shares link bandwidth max-min fairly with "
            "the transfers in flight)"
          : "network model: analytic (each collective timed from its bottleneck links; "
            "collectives in flight together share their NICs)");
  return run;
}

ScenarioCheck check_scenario(const Json& doc) {
  ScenarioCheck c;
  try {
    Prepared p = prepare(doc);
    c.peak_memory_bytes = p.memory.peak_bytes;
    c.memory_capacity_bytes = p.memory.capacity_bytes;
    if (!p.memory.fits()) {
      c.reason_code = "out_of_memory";
      c.reason = p.memory.fits_hbm() ? "offloads more activations than the nodes' host memory holds"
                                     : "needs more memory per GPU than the HBM holds";
      return c;
    }
    c.valid = true;
  } catch (const InvalidStrategy& e) {
    c.reason_code = e.code();
    c.reason = e.what();
  }
  return c;
}

}  // namespace moesim::scenario
