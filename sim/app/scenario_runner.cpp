// Scenario JSON -> simulation -> report JSON: the main job, shared by
// `moesim run`, `moesim sweep`, `moesim search` and the benchmarks.

#include "sim/app/scenario_runner.h"

#include <map>
#include <memory>
#include <mutex>
#include <span>

#include <fmt/format.h>

#include "hwmodels/roofline_cost.h"
#include "sim/core/embedded.h"

#include "reports/timeline.h"
#include "reports/training_report.h"
#include "sim/collectives/collective.h"
#include "sim/exec/scenario.h"
#include "sim/exec/strategy.h"

namespace moesim::cli {
namespace examples {
std::span<const moesim::EmbeddedFile> embedded_files();
}

Json embedded_example(const std::string& file_name) {
  for (const EmbeddedFile& f : examples::embedded_files()) {
    if (f.name == file_name) return parse_json(f.content, "examples/" + file_name);
  }
  throw Error("no embedded example " + file_name);
}

namespace {

struct Prepared {
  exec::ResolvedScenario scenario;
  std::shared_ptr<const exec::RoutingPlan> routing;
  exec::MemoryEstimate memory;
};

// Routing plans depend on the model, routing, gating and the expert-parallel
// layout, not on recompute, ZeRO, schedule or batch size: sweeps and searches
// reuse them across points (bounded cache, shared between threads).
std::shared_ptr<const exec::RoutingPlan> cached_routing(const exec::ResolvedScenario& s) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const exec::RoutingPlan>> cache;
  Json key = s.resolved_json();
  for (const char* f :
       {"recompute", "zero_stage", "pipeline_schedule", "virtual_stages", "overlap_grad_reduce",
        "overlap_param_gather", "a2a_overlap_chunks", "account_for_embedding_and_loss"}) {
    key["parallel"].erase(f);
  }
  key["workload"].erase("global_batch");
  key["options"].erase("pipeline_pass_overhead_us");
  key["options"].erase("network_model");
  const std::string k = key.dump();
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
  }
  auto plan = std::make_shared<const exec::RoutingPlan>(exec::plan_routing(s));
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 64) cache.clear();
  cache.emplace(k, plan);
  return plan;
}

Prepared prepare(const Json& doc) {
  Prepared p{exec::resolve_scenario(doc), {}, {}};
  p.routing = cached_routing(p.scenario);
  const auto& setup = p.scenario.setup;
  p.memory = exec::estimate_memory(setup.model, setup.parallel, setup.workload,
                                   exec::routed_copies_per_gpu(p.routing->routing),
                                   setup.hbm_capacity_bytes, setup.reserved_memory_bytes);
  return p;
}

}  // namespace

OrderedJson run_scenario_report(const Json& doc) {
  return run_scenario(doc, nullptr, 0);
}

OrderedJson run_scenario(const Json& doc, std::string* timeline, int timeline_max_gpus) {
  Prepared p = prepare(doc);
  const auto& s = p.scenario;
  reports::TrainingReportInput in;
  in.resolved_scenario = OrderedJson::parse(s.resolved_json().dump());
  in.setup = &s.setup;
  in.memory = p.memory;
  in.network_model = s.options.network_model;
  in.warnings = p.routing->warnings;
  for (const auto& l : p.routing->layers) in.experts.push_back({l.layer, l.load, l.dropped});
  exec::TrainingResult result;
  if (p.memory.fits()) {
    const hw::RooflineCostModel compute(s.cluster.gpu);
    const bool flow = s.options.network_model == "flow";
    const coll::NetworkModel model =
        flow ? coll::NetworkModel::kFlow : coll::NetworkModel::kAnalytic;
    const exec::HardwareCosts costs{&compute, [&](Engine& engine) {
                                      return coll::make_collective_timer(model, engine, s.cluster);
                                    }};
    result = exec::simulate_training(s.setup, p.routing->routing, costs);
    in.result = &result;
    if (timeline) {
      reports::TimelineOptions t;
      t.gpus_per_node = s.setup.gpus_per_node;
      t.max_gpus = timeline_max_gpus;
      *timeline = reports::chrome_trace(result.last_graph, result.steps.back().execution, t);
      if (s.setup.parallel.gpus() > timeline_max_gpus) {
        in.warnings.push_back(fmt::format("timeline shows the first {} of {} GPUs",
                                          timeline_max_gpus, s.setup.parallel.gpus()));
      }
    }
    in.warnings.push_back(
        flow ? "network model: flow (every transfer shares link bandwidth max-min fairly with "
               "the transfers in flight)"
             : "network model: analytic (each collective timed alone from its bottleneck links; "
               "concurrent collectives do not contend)");
  } else {
    in.warnings.push_back("out of memory: the step was not simulated (see memory.per_stage)");
  }
  return reports::training_report(in);
}

ScenarioCheck check_scenario(const Json& doc) {
  ScenarioCheck c;
  try {
    Prepared p = prepare(doc);
    c.peak_memory_bytes = p.memory.peak_bytes;
    c.memory_capacity_bytes = p.memory.capacity_bytes;
    if (!p.memory.fits()) {
      c.reason_code = "out_of_memory";
      c.reason = "needs more memory per GPU than the HBM holds";
      return c;
    }
    c.valid = true;
  } catch (const exec::InvalidStrategy& e) {
    c.reason_code = e.code();
    c.reason = e.what();
  }
  return c;
}

}  // namespace moesim::cli
