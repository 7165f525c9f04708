#include "sim/scenario/scenario.h"

#include <algorithm>

#include <fmt/format.h>

#include "hwmodels/gpu_calibration.h"
#include "sim/core/error.h"
#include "sim/scenario/routing_plan.h"
#include "sim/scenario/strategy.h"

namespace moesim::scenario {

using exec::ModelShape;

ModelShape model_shape(const workloads::MoeModelConfig& m, int64_t seq_len, int slots,
                       bool with_mtp) {
  ModelShape s;
  s.name = m.name;
  s.mtp_layers = with_mtp ? m.mtp_layers : 0;
  s.layers = m.layers + s.mtp_layers;
  s.hidden = m.hidden;
  s.heads = m.heads;
  s.kv_heads = m.kv_heads;
  s.head_dim = m.head_dim;
  if (m.attention == workloads::AttentionKind::kMla) {
    s.q_lora_rank = m.q_lora_rank;
    s.kv_lora_rank = m.kv_lora_rank;
    s.qk_nope_head_dim = m.qk_nope_head_dim;
    s.qk_rope_head_dim = m.qk_rope_head_dim;
    s.v_head_dim = m.v_head_dim;
  }
  s.dense_ffn = m.dense_ffn;
  s.expert_ffn = m.expert_ffn;
  s.shared_ffn = m.shared_experts * m.shared_expert_ffn;
  s.experts = m.routed_experts;
  s.expert_slots = slots;
  s.top_k = m.top_k;
  s.swiglu = m.activation == workloads::Activation::kSwiGlu;
  s.vocab = m.vocab;
  s.moe_layer.resize(s.layers);
  for (int l = 0; l < s.layers; ++l) s.moe_layer[l] = m.is_moe_layer(l);
  // An MTP module's layer is of the last layer's kind, window included.
  const auto windowed = [&](int l) { return m.is_windowed_layer(std::min(l, m.layers - 1)); };
  s.windowed_layers =
      static_cast<int>(m.windowed_layer_count() + (windowed(m.layers) ? s.mtp_layers : 0));
  if (s.windowed_layers > 0) {
    s.window_span = std::min(seq_len, m.window_tokens);
    s.window_mean_keys = m.mean_attended_tokens(seq_len);
    s.windowed_layer.resize(s.layers);
    for (int l = 0; l < s.layers; ++l) s.windowed_layer[l] = windowed(l);
    s.window_chunked = m.window == workloads::AttentionWindow::kChunked;
    s.window_tokens = m.window_tokens;
  }
  s.attention_params_per_layer = m.attention_params_per_layer();
  s.dense_ffn_params = m.dense_ffn_params();
  s.expert_params = m.expert_params();
  s.shared_expert_params = m.shared_expert_params();
  s.router_params = m.router_params();
  s.embedding_params = m.embedding_params();
  s.output_params = m.output_params();
  s.mtp_module_params = m.mtp_module_params();
  s.total_params = m.total_params();
  s.active_params = m.active_params();
  s.forward_flops_per_token =
      m.flops_per_token(seq_len) + (s.mtp_layers > 0 ? m.mtp_flops_per_token(seq_len) : 0);
  return s;
}

RoutingSource parse_routing_source(ConfigObject& root) {
  RoutingSource routing;
  if (!root.has("routing")) return routing;
  ConfigObject r = root.object("routing");
  if (r.has("trace")) {
    routing.trace_path = r.string("trace");
    if (r.has("generator")) {
      throw_config_error(r.field_path("generator"), "give either a generator or a trace");
    }
    routing.generator = "replay:" + routing.trace_path;
  } else {
    routing.generator = r.string_or("generator", "uniform");
  }
  routing.seed = static_cast<uint64_t>(r.integer_or("seed", 1, 0, INT64_MAX));
  r.finish();
  return routing;
}

Scenario resolve_scenario(const Json& doc) {
  Scenario s;
  ConfigObject root(doc, "");
  s.model = workloads::resolve_model(root.value("model"), "model");
  s.cluster = hw::resolve_cluster(root.value("cluster"), "cluster");
  s.setup.parallel = parse_parallel(root.object("parallel"));
  s.setup.workload = parse_workload(root.object("workload"));
  s.routing = parse_routing_source(root);
  s.gating = workloads::with_model_router(
      workloads::parse_gating(root.has("gating") ? root.value("gating") : Json::object(), "gating"),
      s.model);
  std::string network_model = "auto";
  if (root.has("options")) {
    ConfigObject o = root.object("options");
    s.options.seed = static_cast<uint64_t>(o.integer_or("seed", 1, 0, INT64_MAX));
    network_model = o.choice_or("network_model", "auto", {"auto", "analytic", "flow"});
    s.options.compute_calibration = o.string_or("compute_calibration", "auto");
    s.options.collective_algo = *coll::reduce_algorithm_from_name(
        o.choice_or("collective_algo", "auto", {"auto", "ring", "tree", "nvls"}));
    s.options.routing_samples = static_cast<int>(o.integer_or("routing_samples", 2, 1, 64));
    s.options.max_routings_per_step =
        o.integer_or("max_routings_per_step", 1 << 24, 1024, int64_t{1} << 34);
    s.options.reserved_memory_bytes = o.number_or("reserved_memory_gib", 2, 0, 1e6) * (1ull << 30);
    s.options.pipeline_pass_overhead_us =
        o.number_or("pipeline_pass_overhead_us", kDefaultPipelinePassOverheadUs, 0, 1e6);
    // The task graph indexes tasks with 32 bits.
    s.options.max_tasks_per_step =
        o.number_or("max_tasks_per_step", kDefaultMaxTasksPerStep, 1e3, 4e9);
    o.finish();
  }
  // "auto" picks the flow-level network for steps small enough to afford it.
  const bool flow = network_model == "flow" ||
                    (network_model == "auto" && s.setup.parallel.gpus() <= kAutoFlowMaxGpus);
  s.options.network_model = flow ? coll::NetworkModel::kFlow : coll::NetworkModel::kAnalytic;
  root.finish();

  const int slots = s.model.routed_experts + s.gating.redundant_experts;
  s.setup.model = model_shape(s.model, s.setup.workload.seq_len, slots, true);
  s.setup.gpus_per_node = s.cluster.node.gpus_per_node;
  s.setup.hbm_capacity_bytes = s.cluster.gpu.hbm_bytes;
  s.setup.peak_flops_per_gpu = s.cluster.gpu.peak(s.setup.workload.compute_dtype);
  s.setup.gpu_sms = s.cluster.gpu.sms;
  s.setup.host_link_bytes_per_s = s.cluster.node.pcie_bytes_per_s;
  if (s.setup.peak_flops_per_gpu <= 0) {
    throw_config_error("workload.dtype",
                       fmt::format("{} has no {} throughput", s.cluster.gpu.name,
                                   hw::dtype_name(s.setup.workload.compute_dtype)));
  }
  s.setup.reserved_memory_bytes = s.options.reserved_memory_bytes;
  s.setup.framework.pipeline_pass_s = s.options.pipeline_pass_overhead_us * 1e-6;
  s.setup.collective_algo = s.options.collective_algo;
  compute_cost_model(s);  // checks options.compute_calibration now, not mid-run
  if (s.options.collective_algo == coll::ReduceAlgorithm::kNvls && !s.cluster.node.nvls) {
    throw_config_error("options.collective_algo",
                       fmt::format("\"nvls\" needs NVLink SHARP, which {} does not have "
                                   "(cluster node.nvls)",
                                   s.cluster.name));
  }
  check_strategy(s.setup.model, s.setup.parallel, s.setup.workload, s.cluster.gpu_count(),
                 s.cluster.gpu.sms);
  if (s.setup.model.experts > 0) {
    workloads::check_group_limits(s.gating, s.model.top_k,
                                  s.setup.model.slots() / s.setup.parallel.ep,
                                  ep_ranks_per_node(routing_key(s).ep_rank_node), "gating");
  }
  return s;
}

std::unique_ptr<hw::ComputeCostModel> compute_cost_model(const Scenario& s) {
  return compute_cost_model(s.cluster.gpu, s.options.compute_calibration);
}

std::unique_ptr<hw::ComputeCostModel> compute_cost_model(const hw::GpuSpec& gpu,
                                                         const std::string& calibration) {
  try {
    return hw::make_compute_cost(gpu, calibration == "roofline" ? "" : calibration);
  } catch (const Error& e) {
    throw_config_error("options.compute_calibration", e.what());
  }
}

Json scenario_json(const Scenario& s) {
  const ScenarioOptions& options = s.options;
  Json j;
  j["model"] = workloads::model_json(s.model, s.setup.workload.seq_len);
  j["cluster"] = hw::cluster_json(s.cluster);
  // The SM count matters only where communication overlaps compute.
  if (s.setup.parallel.moe_a2a_overlap != exec::MoeA2aOverlap::kNone)
    j["cluster"]["gpu"]["sms"] = s.cluster.gpu.sms;
  j["parallel"] = parallel_json(s.setup.parallel);
  j["workload"] = workload_json(s.setup.workload);
  j["routing"] = {{"generator", s.routing.generator}, {"seed", s.routing.seed}};
  j["gating"] = workloads::gating_json(s.gating);
  j["options"] = {
      {"seed", options.seed},
      {"network_model", std::string(coll::network_model_name(options.network_model))},
      {"routing_samples", options.routing_samples},
      {"max_routings_per_step", options.max_routings_per_step},
      {"reserved_memory_gib", options.reserved_memory_bytes / (1ull << 30)},
      {"pipeline_pass_overhead_us", options.pipeline_pass_overhead_us},
      {"max_tasks_per_step", options.max_tasks_per_step},
      {"compute_calibration", options.compute_calibration},
      {"collective_algo", std::string(coll::reduce_algorithm_name(options.collective_algo))}};
  return j;
}

}  // namespace moesim::scenario
