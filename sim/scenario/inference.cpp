#include "sim/scenario/inference.h"

#include <algorithm>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/scenario/routing_plan.h"
#include "sim/scenario/strategy.h"

namespace moesim::scenario {
namespace {

constexpr int64_t kMaxDegree = 1 << 20;
constexpr int64_t kMaxBatch = int64_t{1} << 24;
constexpr double kMaxSwapSpaceGib = 1 << 20;

[[noreturn]] void fail(const char* code, const std::string& message) {
  throw InvalidStrategy(code, message);
}

// One instance layout; `instances` is left 0 when not given (filled later).
exec::InferenceParallel parse_layout(ConfigObject& s, int& instances) {
  exec::InferenceParallel p;
  p.tp = static_cast<int>(s.integer_or("tp", 1, 1, kMaxDegree));
  p.attention_dp = static_cast<int>(s.integer_or("attention_dp", 1, 1, kMaxDegree));
  p.ep = static_cast<int>(s.integer_or("ep", 1, 1, kMaxDegree));
  instances = static_cast<int>(s.integer_or("instances", 0, 1, kMaxDegree));
  const std::string algo =
      s.choice_or("a2a_algo", "auto", {"auto", "direct", "hierarchical", "low_latency"});
  p.a2a_auto = algo == "auto";
  p.a2a_algo =
      p.a2a_auto ? coll::AllToAllAlgorithm::kHierarchical : *coll::algorithm_from_name(algo);
  p.dispatch_dtype = s.choice_or("dispatch_dtype", "bf16", {"bf16", "fp8"}) == "fp8"
                         ? hw::DType::kFp8
                         : hw::DType::kBf16;
  p.comm_sms = static_cast<int>(s.integer_or("a2a_comm_sms", 20, 1, 1024));
  return p;
}

// Checks one group's layout against the model and its GPUs, and fills in
// the instance count.
void check_group(InstanceGroup& g, int given_instances, const exec::ModelShape& m, int group_gpus,
                 const std::string& path) {
  const exec::InferenceParallel& p = g.parallel;
  const int per_instance = p.gpus();
  if (group_gpus % per_instance != 0) {
    fail("gpu_count",
         fmt::format("{}: tp x attention_dp = {} x {} = {} must divide the {} GPUs "
                     "{}",
                     path, p.tp, p.attention_dp, per_instance, group_gpus,
                     g.role == exec::InstanceRole::kMixed ? "of the cluster" : "of its nodes"));
  }
  g.instances = given_instances > 0 ? given_instances : group_gpus / per_instance;
  if (g.instances * per_instance != group_gpus) {
    fail("gpu_count",
         fmt::format("{}: instances x tp x attention_dp = {} x {} = {} must equal "
                     "the {} GPUs {}",
                     path, g.instances, per_instance, g.instances * per_instance, group_gpus,
                     g.role == exec::InstanceRole::kMixed ? "of the cluster" : "of its nodes"));
  }
  if (m.heads % p.tp != 0 ||
      (m.kv_heads > 0 && !m.is_mla() && m.kv_heads % p.tp != 0 && p.tp % m.kv_heads != 0)) {
    fail("tp_divides_heads",
         fmt::format("{}.tp: {} must divide the model's {} attention heads (and its {} KV heads, "
                     "or be a multiple of them)",
                     path, p.tp, m.heads, m.kv_heads));
  }
  if ((m.dense_ffn > 0 && m.dense_ffn % p.tp != 0) ||
      (m.shared_ffn > 0 && m.shared_ffn % p.tp != 0)) {
    fail("tp_divides_ffn", fmt::format("{}.tp: {} must divide the FFN widths", path, p.tp));
  }
  if (per_instance % p.ep != 0) {
    fail("ep_divides_gpus", fmt::format("{}.ep: {} must divide the instance's tp x attention_dp "
                                        "= {} GPUs",
                                        path, p.ep, per_instance));
  }
  if (m.experts == 0 && p.ep != 1) {
    fail("ep_divides_experts",
         fmt::format("{}.ep: the model has no routed experts; use ep = 1", path));
  }
  if (m.experts > 0 && m.slots() % p.ep != 0) {
    fail("ep_divides_experts", fmt::format("{}.ep: {} must divide the model's {} routed experts "
                                           "(plus redundant replicas)",
                                           path, p.ep, m.slots()));
  }
  if (m.experts > 0 && m.expert_ffn % p.expert_tp() != 0) {
    fail("etp_divides_ffn", fmt::format("{}: the expert FFN width {} must split over the {} GPUs "
                                        "of each EP rank (tp x attention_dp / ep)",
                                        path, m.expert_ffn, p.expert_tp()));
  }
  // Attention replicas hold different tokens: their experts must be fed by an
  // all-to-all over every GPU of the instance (SGLang requires ep = tp size
  // with --enable-dp-attention and DeepEP).
  if (p.attention_dp > 1 && m.experts > 0 && p.ep != per_instance) {
    fail("attention_dp_needs_ep",
         fmt::format("{}.ep: with attention_dp = {} the experts must be expert-parallel over all "
                     "{} GPUs of the instance (ep = {}), as SGLang's DP attention with DeepEP runs",
                     path, p.attention_dp, per_instance, per_instance));
  }
}

InstanceGroup parse_group(ConfigObject section, exec::InstanceRole role, int first_node,
                          const exec::ModelShape& m, int gpus_per_node, int& nodes_out) {
  InstanceGroup g;
  g.role = role;
  g.first_node = first_node;
  g.first_rank = first_node * gpus_per_node;
  g.nodes = static_cast<int>(section.integer("nodes", 1, 1 << 20));
  ConfigObject layout = section.object("parallel");
  int instances = 0;
  g.parallel = parse_layout(layout, instances);
  layout.finish();
  section.finish();
  check_group(g, instances, m, g.nodes * gpus_per_node, layout.path());
  nodes_out = g.nodes;
  return g;
}

void parse_serving(ConfigObject s, InferenceScenario& out) {
  exec::ServingConfig& c = out.serving;
  c.max_batch_size = static_cast<int>(s.integer_or("max_batch_size", 256, 1, kMaxBatch));
  // 0 until the requests are read (default_token_budget).
  c.max_num_tokens = s.has("max_num_tokens") ? s.integer("max_num_tokens", 1, kMaxBatch) : 0;
  c.chunked_prefill = s.integer_or("chunked_prefill", 0, 0, kMaxBatch);
  c.kv_block_tokens = static_cast<int>(s.integer_or("kv_block_tokens", 64, 1, 1 << 16));
  out.kv_dtype = *hw::dtype_from_name(s.choice_or("kv_dtype", "bf16", {"bf16", "fp8"}));
  c.preemption = s.choice_or("preemption", "recompute", {"recompute", "swap"}) == "swap"
                     ? exec::ServingConfig::Preemption::kSwap
                     : exec::ServingConfig::Preemption::kRecompute;
  c.swap_space_bytes = s.number_or("swap_space_gib", 4, 0, kMaxSwapSpaceGib) * (1ull << 30);
  out.two_batch_overlap = s.boolean_or("two_batch_overlap", false);
  if (s.has("slo")) {
    ConfigObject slo = s.object("slo");
    c.slo_ttft_s = slo.number_or("ttft_ms", 0, 1e-3, 1e9) / 1e3;
    c.slo_tpot_s = slo.number_or("tpot_ms", 0, 1e-3, 1e9) / 1e3;
    if (!slo.has("ttft_ms") && !slo.has("tpot_ms")) {
      throw_config_error(slo.path(), "give ttft_ms, tpot_ms or both");
    }
    slo.finish();
  }
  s.finish();
}

void parse_options(ConfigObject o, InferenceOptions& opt) {
  opt.compute_calibration = o.string_or("compute_calibration", "auto");
  opt.routing_samples = static_cast<int>(o.integer_or("routing_samples", 2, 1, 64));
  opt.max_routings_per_iteration =
      o.integer_or("max_routings_per_iteration", 1 << 20, 1024, int64_t{1} << 30);
  opt.reserved_memory_bytes = o.number_or("reserved_memory_gib", 4, 0, 1e6) * (1ull << 30);
  opt.max_iterations =
      static_cast<uint64_t>(o.integer_or("max_iterations", 20'000'000, 1, int64_t{1} << 40));
  opt.timeline_iterations =
      static_cast<uint64_t>(o.integer_or("timeline_iterations", 20'000, 0, 10'000'000));
  o.finish();
}

void parse_routing(ConfigObject& root, InferenceScenario& s) {
  s.routing = parse_routing_source(root);
  s.gating = workloads::with_model_router(
      workloads::parse_gating(root.has("gating") ? root.value("gating") : Json::object(), "gating"),
      s.model);
}

void parse_parallel_section(ConfigObject p, InferenceScenario& s) {
  const int gpus_per_node = s.cluster.node.gpus_per_node;
  if (!p.has("disaggregation")) {
    InstanceGroup g;
    int instances = 0;
    g.parallel = parse_layout(p, instances);
    g.nodes = s.cluster.nodes;
    p.finish();
    check_group(g, instances, s.shape, s.cluster.gpu_count(), "parallel");
    s.groups.push_back(g);
    return;
  }
  ConfigObject d = p.object("disaggregation");
  p.finish();
  int node = 0, nodes = 0;
  if (d.has("prefill")) {
    s.groups.push_back(parse_group(d.object("prefill"), exec::InstanceRole::kPrefill, node, s.shape,
                                   gpus_per_node, nodes));
    node += nodes;
  }
  if (d.has("decode")) {
    s.groups.push_back(parse_group(d.object("decode"), exec::InstanceRole::kDecode, node, s.shape,
                                   gpus_per_node, nodes));
    node += nodes;
  }
  d.finish();
  if (s.groups.empty()) throw_config_error(d.path(), "give \"prefill\", \"decode\" or both");
  if (node != s.cluster.nodes) {
    fail("gpu_count", fmt::format("parallel.disaggregation: the roles' nodes add up to {}, the "
                                  "cluster has {}",
                                  node, s.cluster.nodes));
  }
}

// Swapped caches live in host memory: vLLM refuses a swap space over 70% of
// the host's memory (CacheConfig.verify_with_parallel_config,
// vllm/config/cache.py), counting every GPU of a node.
void check_swap_space(const InferenceScenario& s) {
  if (s.serving.preemption != exec::ServingConfig::Preemption::kSwap) return;
  const int gpus_per_node = s.cluster.node.gpus_per_node;
  const double node_bytes = s.serving.swap_space_bytes * gpus_per_node;
  if (node_bytes <= 0.7 * s.cluster.node.host_memory_bytes) return;
  throw_config_error(
      "serving.swap_space_gib",
      fmt::format("{:g} GiB per GPU x {} GPUs per node is {:.4g} GB, more than 70% of the node's "
                  "{:.4g} GB of host memory (cluster node.host_memory_gb); vLLM refuses it too",
                  s.serving.swap_space_bytes / (1ull << 30), gpus_per_node, node_bytes / 1e9,
                  s.cluster.node.host_memory_bytes / 1e9));
}

// Two-batch overlap hides one micro-batch's dispatch and combine behind the
// other's compute; with no all-to-all it only halves the batch (each half
// reads the expert weights again). SGLang refuses it without an all-to-all
// backend ("When enabling two batch overlap, moe_a2a_backend cannot be
// 'none'", python/sglang/srt/server_args.py), and so does moesim.
void check_two_batch_overlap(const InferenceScenario& s) {
  if (!s.two_batch_overlap) return;
  for (const InstanceGroup& g : s.groups) {
    if (s.model.routed_experts > 0 && g.parallel.ep > 1) continue;
    const std::string ep_path = s.disaggregated()
                                    ? fmt::format("parallel.disaggregation.{}.parallel.ep",
                                                  exec::instance_role_name(g.role))
                                    : std::string("parallel.ep");
    throw_config_error(
        "serving.two_batch_overlap",
        s.model.routed_experts == 0
            ? fmt::format("{} has no routed experts, so no all-to-all to overlap; turn it off",
                          s.model.name)
            : fmt::format("{} is 1, so no dispatch or combine runs for the other micro-batch's "
                          "compute to hide (SGLang refuses it without an all-to-all backend); "
                          "turn it off or raise ep",
                          ep_path));
  }
}

// serving.max_num_tokens when not given: 8,192 (vLLM's OpenAI server default
// on GPUs of 70 GiB or more but A100s, EngineArgs.get_batch_defaults,
// vllm/engine/arg_utils.py), and without chunked prefill at least the
// longest request, as vLLM's default max_num_batched_tokens is
// max(max_model_len, its default) unless chunked prefill is on
// (SchedulerConfig.__post_init__, vllm/config/scheduler.py).
int64_t default_token_budget(const InferenceScenario& s) {
  int64_t budget = 8192;
  if (s.serving.chunked_prefill > 0) return budget;
  for (const workloads::Request& r : s.requests.requests) {
    budget = std::max(budget, r.input_tokens + r.output_tokens);
  }
  return budget;
}

// Without chunked prefill a prompt is computed whole in one iteration, and
// so is a preempted request's prompt and output so far when it is
// recomputed: a sequence longer than the iteration's token budget could never
// run. vLLM refuses max_num_batched_tokens below max_model_len unless chunked
// prefill is on (SchedulerConfig._verify_args, vllm/config/scheduler.py).
// Prefill instances compute prompts only; decode instances receive caches.
void check_token_budget(const InferenceScenario& s) {
  if (s.serving.chunked_prefill > 0) return;
  for (const InstanceGroup& g : s.groups) {
    if (g.role == exec::InstanceRole::kDecode) continue;
    const bool prompt_only = g.role == exec::InstanceRole::kPrefill;
    for (size_t i = 0; i < s.requests.requests.size(); ++i) {
      const workloads::Request& r = s.requests.requests[i];
      const int64_t whole = prompt_only ? r.input_tokens : r.input_tokens + r.output_tokens;
      if (whole <= s.serving.max_num_tokens) continue;
      fail("token_budget",
           fmt::format("requests: request {} (in arrival order; {} input + {} output tokens) "
                       "is longer than serving.max_num_tokens = {} with serving.chunked_prefill "
                       "0: {} is computed whole in one iteration, so it could never run; raise "
                       "serving.max_num_tokens or set serving.chunked_prefill",
                       i, r.input_tokens, r.output_tokens, s.serving.max_num_tokens,
                       prompt_only ? "its prompt"
                                   : "its prompt (and output so far, recomputed after a "
                                     "preemption)"));
    }
  }
}

}  // namespace

bool is_inference(const Json& doc) {
  if (!doc.is_object()) return false;
  const auto w = doc.find("workload");
  if (w == doc.end() || !w->is_object()) return false;
  const auto mode = w->find("mode");
  return mode != w->end() && mode->is_string() && mode->get<std::string>() == "inference";
}

int InstanceGroup::first_gpu(int instance) const {
  return first_rank + instance * parallel.gpus();
}

std::vector<int> InstanceGroup::ep_rank_nodes(const hw::ClusterSpec& cluster, int instance) const {
  std::vector<int> nodes(parallel.ep);
  for (int e = 0; e < parallel.ep; ++e) {
    nodes[e] = cluster.node_of(first_gpu(instance) + e * parallel.expert_tp());
  }
  return nodes;
}

int InferenceScenario::gpus() const {
  return cluster.gpu_count();
}

InferenceScenario resolve_inference_scenario(const Json& doc) {
  InferenceScenario s;
  ConfigObject root(doc, "");
  s.model = workloads::resolve_model(root.value("model"), "model");
  s.cluster = hw::resolve_cluster(root.value("cluster"), "cluster");
  {
    ConfigObject w = root.object("workload");
    w.choice("mode", {"inference"});
    s.dtype = *hw::dtype_from_name(w.choice_or("dtype", "bf16", {"bf16", "fp8"}));
    w.finish();
  }
  parse_routing(root, s);
  if (root.has("options")) parse_options(root.object("options"), s.options);
  if (root.has("serving")) {
    parse_serving(root.object("serving"), s);
  } else {
    parse_serving(ConfigObject(Json::object(), "serving"), s);
  }
  if (!root.has("requests")) throw_config_error("requests", "required for inference scenarios");
  s.requests_spec = root.value("requests");
  s.requests = workloads::parse_request_load(s.requests_spec, "requests");
  const int slots = s.model.routed_experts + s.gating.redundant_experts;
  s.shape = model_shape(s.model, 1, slots, false);
  if (s.cluster.gpu.peak(s.dtype) <= 0) {
    throw_config_error("workload.dtype", fmt::format("{} has no {} throughput", s.cluster.gpu.name,
                                                     hw::dtype_name(s.dtype)));
  }
  parse_parallel_section(root.object("parallel"), s);
  root.finish();
  check_swap_space(s);
  check_two_batch_overlap(s);
  if (s.serving.max_num_tokens == 0) s.serving.max_num_tokens = default_token_budget(s);
  check_token_budget(s);
  for (InstanceGroup& g : s.groups) {
    g.parallel.two_batch_overlap = s.two_batch_overlap;
    if (s.model.routed_experts == 0) continue;
    // Every instance of a group has the same layout: the first stands for all.
    workloads::check_group_limits(s.gating, s.model.top_k, s.shape.slots() / g.parallel.ep,
                                  ep_ranks_per_node(g.ep_rank_nodes(s.cluster, 0)), "gating");
  }
  compute_cost_model(s.cluster.gpu, s.options.compute_calibration);  // checked now, not mid-run
  return s;
}

Json inference_scenario_json(const InferenceScenario& s) {
  Json j;
  j["model"] = workloads::model_json(s.model, 1);
  j["cluster"] = hw::cluster_json(s.cluster);
  j["workload"] = {{"mode", "inference"}, {"dtype", std::string(hw::dtype_name(s.dtype))}};
  auto layout = [](const InstanceGroup& g) {
    const exec::InferenceParallel& p = g.parallel;
    return Json{{"tp", p.tp},
                {"attention_dp", p.attention_dp},
                {"ep", p.ep},
                {"instances", g.instances},
                {"a2a_algo",
                 p.a2a_auto ? std::string("auto") : std::string(coll::algorithm_name(p.a2a_algo))},
                {"dispatch_dtype", std::string(hw::dtype_name(p.dispatch_dtype))},
                {"a2a_comm_sms", p.comm_sms}};
  };
  if (!s.disaggregated()) {
    j["parallel"] = layout(s.groups[0]);
  } else {
    Json d = Json::object();
    for (const InstanceGroup& g : s.groups) {
      d[exec::instance_role_name(g.role)] = {{"nodes", g.nodes}, {"parallel", layout(g)}};
    }
    j["parallel"] = {{"disaggregation", d}};
  }
  const exec::ServingConfig& c = s.serving;
  j["serving"] = {
      {"max_batch_size", c.max_batch_size},
      {"max_num_tokens", c.max_num_tokens},
      {"chunked_prefill", c.chunked_prefill},
      {"kv_block_tokens", c.kv_block_tokens},
      {"kv_dtype", std::string(hw::dtype_name(s.kv_dtype))},
      {"preemption", c.preemption == exec::ServingConfig::Preemption::kSwap ? "swap" : "recompute"},
      {"two_batch_overlap", s.two_batch_overlap}};
  if (c.preemption == exec::ServingConfig::Preemption::kSwap) {
    j["serving"]["swap_space_gib"] = c.swap_space_bytes / (1ull << 30);
  }
  if (c.slo_ttft_s > 0 || c.slo_tpot_s > 0) {
    Json slo = Json::object();
    if (c.slo_ttft_s > 0) slo["ttft_ms"] = c.slo_ttft_s * 1e3;
    if (c.slo_tpot_s > 0) slo["tpot_ms"] = c.slo_tpot_s * 1e3;
    j["serving"]["slo"] = slo;
  }
  j["requests"] = workloads::request_load_json(s.requests, s.requests_spec);
  j["routing"] = {{"generator", s.routing.generator}, {"seed", s.routing.seed}};
  j["gating"] = workloads::gating_json(s.gating);
  const InferenceOptions& o = s.options;
  j["options"] = {{"compute_calibration", o.compute_calibration},
                  {"routing_samples", o.routing_samples},
                  {"max_routings_per_iteration", o.max_routings_per_iteration},
                  {"reserved_memory_gib", o.reserved_memory_bytes / (1ull << 30)},
                  {"max_iterations", o.max_iterations},
                  {"timeline_iterations", o.timeline_iterations}};
  return j;
}

}  // namespace moesim::scenario
