#include "sim/exec/scenario.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include <fmt/format.h>

#include "sim/core/parallel_for.h"
#include "sim/exec/rank_layout.h"
#include "sim/exec/routing_sample.h"
#include "sim/exec/strategy.h"
#include "workloads/routing_generator.h"

namespace moesim::exec {

ModelShape model_shape(const workloads::MoeModelConfig& m, int64_t seq_len, int slots) {
  ModelShape s;
  s.name = m.name;
  s.layers = m.layers;
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
  s.moe_layer.resize(m.layers);
  for (int l = 0; l < m.layers; ++l) s.moe_layer[l] = m.is_moe_layer(l);
  s.attention_params_per_layer = m.attention_params_per_layer();
  s.dense_ffn_params = m.dense_ffn_params();
  s.expert_params = m.expert_params();
  s.shared_expert_params = m.shared_expert_params();
  s.router_params = m.router_params();
  s.embedding_params = m.embedding_params();
  s.output_params = m.output_params();
  s.total_params = m.total_params();
  s.active_params = m.active_params();
  s.forward_flops_per_token = m.flops_per_token(seq_len);
  return s;
}

ResolvedScenario resolve_scenario(const Json& doc) {
  ResolvedScenario s;
  s.input = doc;
  ConfigObject root(doc, "");
  s.model = workloads::resolve_model(root.value("model"), "model");
  s.cluster = hw::resolve_cluster(root.value("cluster"), "cluster");
  s.setup.parallel = parse_parallel(root.object("parallel"));
  s.setup.workload = parse_workload(root.object("workload"));
  if (root.has("routing")) {
    ConfigObject r = root.object("routing");
    if (r.has("trace")) {
      s.trace_path = r.string("trace");
      if (r.has("generator")) {
        throw_config_error(r.field_path("generator"), "give either a generator or a trace");
      }
      s.generator = "replay:" + s.trace_path;
    } else {
      s.generator = r.string_or("generator", "uniform");
    }
    s.routing_seed = static_cast<uint64_t>(r.integer_or("seed", 1, 0, INT64_MAX));
    r.finish();
  } else {
    s.generator = "uniform";
  }
  s.gating = root.has("gating") ? workloads::parse_gating(root.value("gating"), "gating")
                                : workloads::parse_gating(Json::object(), "gating");
  if (root.has("options")) {
    ConfigObject o = root.object("options");
    s.options.seed = static_cast<uint64_t>(o.integer_or("seed", 1, 0, INT64_MAX));
    s.options.network_model = o.choice_or("network_model", "auto", {"auto", "analytic", "flow"});
    s.options.routing_samples = static_cast<int>(o.integer_or("routing_samples", 2, 1, 64));
    s.options.max_routings_per_step =
        o.integer_or("max_routings_per_step", 1 << 24, 1024, int64_t{1} << 34);
    s.options.reserved_memory_bytes = o.number_or("reserved_memory_gib", 2, 0, 1e6) * (1ull << 30);
    s.options.pipeline_pass_overhead_us =
        o.number_or("pipeline_pass_overhead_us", kDefaultPipelinePassOverheadUs, 0, 1e6);
    o.finish();
  }
  // "auto" picks the flow-level network for steps small enough to afford it.
  if (s.options.network_model == "auto") {
    s.options.network_model = s.setup.parallel.gpus() <= kAutoFlowMaxGpus ? "flow" : "analytic";
  }
  root.finish();

  const int slots = s.model.routed_experts + s.gating.redundant_experts;
  s.setup.model = model_shape(s.model, s.setup.workload.seq_len, slots);
  s.setup.gpus_per_node = s.cluster.node.gpus_per_node;
  s.setup.hbm_capacity_bytes = s.cluster.gpu.hbm_bytes;
  s.setup.peak_flops_per_gpu = s.cluster.gpu.peak(s.setup.workload.compute_dtype);
  if (s.setup.peak_flops_per_gpu <= 0) {
    throw_config_error("workload.dtype",
                       fmt::format("{} has no {} throughput", s.cluster.gpu.name,
                                   hw::dtype_name(s.setup.workload.compute_dtype)));
  }
  s.setup.reserved_memory_bytes = s.options.reserved_memory_bytes;
  s.setup.framework.pipeline_pass_s = s.options.pipeline_pass_overhead_us * 1e-6;
  check_strategy(s.setup.model, s.setup.parallel, s.setup.workload, s.cluster.gpu_count());
  return s;
}

Json ResolvedScenario::resolved_json() const {
  Json j;
  j["model"] = workloads::model_json(model, setup.workload.seq_len);
  j["cluster"] = hw::cluster_json(cluster);
  j["parallel"] = parallel_json(setup.parallel);
  j["workload"] = workload_json(setup.workload);
  j["routing"] = {{"generator", generator}, {"seed", routing_seed}};
  j["gating"] = workloads::gating_json(gating);
  j["options"] = {{"seed", options.seed},
                  {"network_model", options.network_model},
                  {"routing_samples", options.routing_samples},
                  {"max_routings_per_step", options.max_routings_per_step},
                  {"reserved_memory_gib", options.reserved_memory_bytes / (1ull << 30)},
                  {"pipeline_pass_overhead_us", options.pipeline_pass_overhead_us}};
  return j;
}

RoutingPlan plan_routing(const ResolvedScenario& s) {
  RoutingPlan plan;
  const ParallelConfig& p = s.setup.parallel;
  const ModelShape& m = s.setup.model;
  const int moe_layers = m.moe_layers();
  const int ep = p.ep;
  const int64_t tokens_per_rank = s.setup.workload.seq_len * p.micro_batch_size / p.tp;
  // Budget: options.max_routings_per_step token routings per step. Over it,
  // use one sample per layer, then generate only some layers (the others
  // reuse them cyclically: same statistics, fewer distinct draws), and only
  // as a last resort generate fewer tokens and scale the counts (which
  // exaggerates imbalance, so it is avoided).
  const double budget = static_cast<double>(s.options.max_routings_per_step);
  const int steps = s.setup.workload.steps;
  const double per_sample = static_cast<double>(ep) * tokens_per_rank * m.top_k;
  int samples = s.options.routing_samples;
  int gen_layers = moe_layers;
  if (per_sample * samples * gen_layers * steps > budget) samples = 1;
  if (per_sample * samples * gen_layers * steps > budget) {
    gen_layers = std::max(1, static_cast<int>(budget / (per_sample * steps)));
    plan.warnings.push_back(fmt::format(
        "routing: {} of {} MoE layers generated, the others reuse them cyclically, 1 sample "
        "per layer and step (raise options.max_routings_per_step for more)",
        gen_layers, moe_layers));
  } else if (samples < s.options.routing_samples) {
    plan.warnings.push_back(
        "routing: 1 sample per layer and step (raise options.max_routings_per_step for more)");
  }
  plan.subsample = std::max(1.0, std::ceil(per_sample * steps / budget));
  const int64_t generated_per_rank =
      std::max<int64_t>(1, tokens_per_rank / static_cast<int64_t>(plan.subsample));
  const double scale = static_cast<double>(tokens_per_rank) / generated_per_rank;
  if (plan.subsample > 1) {
    plan.warnings.push_back(fmt::format(
        "routing sampled: {} of {} tokens per rank generated per micro-batch sample, counts "
        "scaled by {:.3g} (raise options.max_routings_per_step for exact token-level routing)",
        generated_per_rank, tokens_per_rank, scale));
  }
  const auto generator =
      workloads::make_generator(s.generator, s.model, s.routing_seed, "routing.generator");
  // EP ranks per node: how many members of an EP group share a node.
  const RankLayout layout(p);
  const std::vector<int> group = layout.ep_group(0);
  std::vector<int> per_node(s.cluster.nodes, 0);
  for (int r : group) ++per_node[s.cluster.node_of(r)];
  const int ranks_per_node = std::max(1, *std::max_element(per_node.begin(), per_node.end()));
  std::vector<int> position_node(ep);
  for (int i = 0; i < ep; ++i) position_node[i] = s.cluster.node_of(group[i]);

  plan.routing.resize(steps);
  plan.layers.resize(moe_layers);
  const int slots = m.slots();
  std::vector<int> moe_layer_index;  // MoE ordinal -> model layer
  for (int l = 0; l < m.layers; ++l) {
    if (m.moe_layer[l]) moe_layer_index.push_back(l);
  }

  // One generated MoE layer: its routing per step and its load statistics.
  struct GeneratedLayer {
    RoutingPlan::LayerStats stats;
    std::vector<LayerRouting> per_step;
  };
  auto generate_layer = [&](int j) {
    GeneratedLayer out;
    const int l = moe_layer_index[j];
    std::vector<int64_t> tokens(ep, generated_per_rank);
    workloads::RoutingBatch batch;
    workloads::GatingOutcome outcome;
    out.stats.layer = l;
    out.stats.load.assign(slots, 0);
    for (int step = 0; step < steps; ++step) {
      const std::vector<double> pop = generator->popularity(step, j);
      const workloads::ExpertPlacement place =
          workloads::place_experts(m.experts, ep, slots - m.experts, pop);
      LayerRouting lr;
      lr.layer = l;
      for (int sample = 0; sample < samples; ++sample) {
        // Samples of later steps and layers use distinct generator steps.
        generator->generate(step * samples + sample, j, tokens, batch);
        workloads::apply_gating(batch, s.gating, place, pop, ranks_per_node, outcome);
        RoutingSampleBuilder b(ep, slots);
        b.add_tokens_in(static_cast<int64_t>(std::llround(batch.tokens * scale)));
        std::vector<int64_t> counts(static_cast<size_t>(ep) * slots, 0);
        std::vector<int64_t> unique(static_cast<size_t>(ep) * ep, 0);
        const int k = batch.top_k;
        for (int64_t t = 0; t < batch.tokens; ++t) {
          const int src = batch.source_rank[t];
          // Hierarchical (DeepEP-style) dispatch sends a token once per
          // destination rank inside its node, and once per destination node
          // across nodes (forwarded inside that node over NVLink): the
          // cross-node copy is counted at the token's first rank there.
          int dsts[64], nodes[64];
          int n_dst = 0, n_nodes = 0;
          for (int c = 0; c < k; ++c) {
            const int32_t slot = outcome.slot[t * k + c];
            if (slot < 0) continue;
            ++counts[src * slots + slot];
            const int dst = slot / (slots / ep);
            if (std::find(dsts, dsts + n_dst, dst) != dsts + n_dst) continue;
            dsts[n_dst++] = dst;
            if (position_node[dst] == position_node[src]) {
              ++unique[src * ep + dst];
            } else if (std::find(nodes, nodes + n_nodes, position_node[dst]) == nodes + n_nodes) {
              nodes[n_nodes++] = position_node[dst];
              ++unique[src * ep + dst];
            }
          }
        }
        for (int src = 0; src < ep; ++src) {
          for (int slot = 0; slot < slots; ++slot) {
            const int64_t c = counts[src * slots + slot];
            if (c) b.add(src, slot, static_cast<int64_t>(std::llround(c * scale)));
          }
        }
        for (int src = 0; src < ep; ++src) {
          for (int dst = 0; dst < ep; ++dst) {
            const int64_t u = unique[src * ep + dst];
            if (u) b.add_unique(src, dst, static_cast<int64_t>(std::llround(u * scale)));
          }
        }
        b.add_dropped(static_cast<int64_t>(std::llround(outcome.dropped * scale)));
        RoutingSample rs = b.take();
        for (int slot = 0; slot < slots; ++slot) out.stats.load[slot] += rs.expert_tokens[slot];
        out.stats.dropped += rs.dropped;
        lr.samples.push_back(std::move(rs));
      }
      out.per_step.push_back(std::move(lr));
    }
    return out;
  };

  // Every (step, layer) batch has its own random stream, so layers can be
  // generated on several threads and the plan is the same as a serial one.
  // Small plans (sweep points, tests) stay on the calling thread.
  std::vector<GeneratedLayer> generated(gen_layers);
  const double work = per_sample * samples * steps * gen_layers;
  const int threads =
      work < 4e6
          ? 1
          : static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 8));
  parallel_for(generated.size(), threads,
               [&](size_t j) { generated[j] = generate_layer(static_cast<int>(j)); });

  for (int j = 0; j < moe_layers; ++j) {
    const int l = moe_layer_index[j];
    if (j < gen_layers) {
      plan.layers[j] = std::move(generated[j].stats);
      for (int step = 0; step < steps; ++step) {
        plan.routing[step].push_back(std::move(generated[j].per_step[step]));
      }
      continue;
    }
    // Beyond the budget, layers reuse the generated ones cyclically.
    const int from = j % gen_layers;
    plan.layers[j] = plan.layers[from];
    plan.layers[j].layer = l;
    for (int step = 0; step < steps; ++step) {
      LayerRouting lr = plan.routing[step][from];
      lr.layer = l;
      plan.routing[step].push_back(std::move(lr));
    }
  }
  return plan;
}

}  // namespace moesim::exec
