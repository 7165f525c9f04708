#include "sim/scenario/strategy.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "sim/scenario/pipeline_layout.h"

namespace moesim::scenario {

using exec::MoeA2aOverlap;
using exec::PipelineSchedule;
using exec::Recompute;
namespace {

constexpr int64_t kMaxDegree = 1 << 20;

std::string overlap_name(MoeA2aOverlap o) {
  switch (o) {
    case MoeA2aOverlap::kNone:
      return "none";
    case MoeA2aOverlap::kOneFOneB:
      return "1f1b";
    case MoeA2aOverlap::kDualPipe:
      return "dualpipe";
  }
  return "none";
}

// Megatron-Core's --offload-modules names, in OffloadModule order.
constexpr std::string_view kOffloadModuleNames[] = {
    "attn_norm", "qkv_linear", "core_attn", "attn_proj", "mlp_norm", "expert_fc1", "moe_act"};
static_assert(std::size(kOffloadModuleNames) == static_cast<size_t>(exec::OffloadModule::kCount));

uint8_t parse_offload_modules(ConfigObject& s) {
  const std::string path = s.field_path("offload_activations");
  const Json& list = s.value("offload_activations");
  if (!list.is_array()) {
    throw_config_error(path, fmt::format("expected an array of module names (\"core_attn\", "
                                         "\"expert_fc1\", ...), got {}",
                                         describe_json(list)));
  }
  uint8_t modules = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item_path = join_path(path, i);
    const std::string name = expect_string(list[i], item_path);
    const auto* it =
        std::find(std::begin(kOffloadModuleNames), std::end(kOffloadModuleNames), name);
    if (it == std::end(kOffloadModuleNames)) {
      throw_config_error(item_path,
                         fmt::format("unknown module \"{}\"; expected one of attn_norm, "
                                     "qkv_linear, core_attn, attn_proj, mlp_norm, expert_fc1, "
                                     "moe_act (Megatron-Core's --offload-modules)",
                                     name));
    }
    const uint8_t bit = static_cast<uint8_t>(1u << (it - std::begin(kOffloadModuleNames)));
    if (modules & bit) throw_config_error(item_path, fmt::format("\"{}\" is listed twice", name));
    modules |= bit;
  }
  return modules;
}

// Megatron-Core's OptimizerConfig precision fields (see exec::AdamPrecision)
// and its checks: 16-bit moments need --use-precision-aware-optimizer
// (optimizer_config.py), which needs the distributed optimizer
// (optimizer/__init__.py).
exec::AdamPrecision parse_adam_precision(ConfigObject& s, int zero_stage) {
  exec::AdamPrecision adam;
  adam.precision_aware = s.boolean_or("use_precision_aware_optimizer", false);
  const std::pair<const char*, hw::DType*> moments[] = {{"exp_avg_dtype", &adam.exp_avg},
                                                        {"exp_avg_sq_dtype", &adam.exp_avg_sq}};
  for (const auto& [key, dtype] : moments) {
    *dtype = *hw::dtype_from_name(s.choice_or(key, "fp32", {"fp32", "bf16", "fp16"}));
    if (*dtype != hw::DType::kFp32 && !adam.precision_aware) {
      throw_config_error(s.field_path(key),
                         fmt::format("\"{}\" needs \"use_precision_aware_optimizer\": true "
                                     "(Megatron-Core keeps Adam's moments in FP32 otherwise)",
                                     hw::dtype_name(*dtype)));
    }
  }
  adam.store_param_remainders = s.boolean_or("store_param_remainders", true);
  if (adam.precision_aware && zero_stage < 1) {
    throw_config_error(s.field_path("use_precision_aware_optimizer"),
                       "needs the distributed optimizer (zero_stage 1 or more; it is 0), as "
                       "in Megatron-Core");
  }
  return adam;
}

}  // namespace

ParallelConfig parse_parallel(ConfigObject s) {
  ParallelConfig p;
  p.dp = static_cast<int>(s.integer_or("dp", 1, 1, kMaxDegree));
  p.tp = static_cast<int>(s.integer_or("tp", 1, 1, kMaxDegree));
  p.pp = static_cast<int>(s.integer_or("pp", 1, 1, kMaxDegree));
  p.ep = static_cast<int>(s.integer_or("ep", 1, 1, kMaxDegree));
  p.etp = static_cast<int>(s.integer_or("etp", 1, 1, kMaxDegree));
  p.sequence_parallel = s.boolean_or("sequence_parallel", p.tp > 1);
  p.zero_stage = static_cast<int>(s.integer_or("zero_stage", 1, 0, 3));
  p.micro_batch_size = static_cast<int>(s.integer_or("micro_batch_size", 1, 1, kMaxDegree));
  const std::string schedule = s.choice_or("pipeline_schedule", "1f1b", {"1f1b", "interleaved"});
  p.schedule = schedule == "1f1b" ? PipelineSchedule::kOneFOneB : PipelineSchedule::kInterleaved;
  p.virtual_stages = static_cast<int>(s.integer_or("virtual_stages", 1, 1, 1024));
  p.embedding_and_loss_as_layers = s.boolean_or("account_for_embedding_and_loss", false);
  if (s.has("pipeline_layout")) {
    p.layout_text = s.string("pipeline_layout");
    p.layout = parse_pipeline_layout(p.layout_text, s.field_path("pipeline_layout"));
    if (p.embedding_and_loss_as_layers) {
      throw_config_error(s.field_path("account_for_embedding_and_loss"),
                         "a pipeline_layout places the embedding and the loss itself; leave "
                         "this out (Megatron-Core refuses the two together)");
    }
  }
  p.cp = static_cast<int>(s.integer_or("cp", 1, 1, kMaxDegree));
  const std::string recompute =
      s.choice_or("recompute", "none", {"none", "selective", "selective_moe", "full"});
  p.recompute = recompute == "none"            ? Recompute::kNone
                : recompute == "selective"     ? Recompute::kSelective
                : recompute == "selective_moe" ? Recompute::kSelectiveMoe
                                               : Recompute::kFull;
  // Megatron-Core's order names cp; without context parallelism the shorter
  // names (cp left out) mean the same layout.
  const std::string order =
      s.choice_or("rank_order", "tp-cp-ep-dp-pp",
                  {"tp-cp-ep-dp-pp", "tp-cp-ep-pp-dp", "tp-ep-dp-pp", "tp-ep-pp-dp"});
  if (p.cp > 1 && order.find("cp") == std::string::npos) {
    throw_config_error(s.field_path("rank_order"),
                       fmt::format("\"{}\" does not say where the cp = {} context-parallel ranks "
                                   "go; use \"tp-cp-ep-dp-pp\" or \"tp-cp-ep-pp-dp\"",
                                   order, p.cp));
  }
  p.pp_outer_of_dp = order.ends_with("-pp");
  p.overlap_grad_reduce = s.boolean_or("overlap_grad_reduce", true);
  p.overlap_param_gather = s.boolean_or("overlap_param_gather", true);
  p.a2a_overlap_chunks = static_cast<int>(s.integer_or("a2a_overlap_chunks", 1, 1, 64));
  p.a2a_algo = *coll::algorithm_from_name(
      s.choice_or("a2a_algo", "hierarchical", {"direct", "hierarchical", "low_latency"}));
  p.dispatch_dtype = s.choice_or("dispatch_dtype", "bf16", {"bf16", "fp8"}) == "fp8"
                         ? hw::DType::kFp8
                         : hw::DType::kBf16;
  p.cross_entropy_loss_fusion = s.boolean_or("cross_entropy_loss_fusion", true);
  p.adam = parse_adam_precision(s, p.zero_stage);
  const std::string overlap = s.choice_or("moe_a2a_overlap", "none", {"none", "1f1b", "dualpipe"});
  p.moe_a2a_overlap = overlap == "1f1b"       ? MoeA2aOverlap::kOneFOneB
                      : overlap == "dualpipe" ? MoeA2aOverlap::kDualPipe
                                              : MoeA2aOverlap::kNone;
  p.a2a_comm_sms = static_cast<int>(s.integer_or("a2a_comm_sms", 20, 1, 1024));
  if (s.has("offload_activations")) p.offload_modules = parse_offload_modules(s);
  if (p.schedule == PipelineSchedule::kOneFOneB && p.virtual_stages != 1) {
    throw_config_error(s.field_path("virtual_stages"),
                       "virtual stages need \"pipeline_schedule\": \"interleaved\"");
  }
  s.finish();
  return p;
}

TrainingWorkload parse_workload(ConfigObject s) {
  TrainingWorkload w;
  const std::string mode = s.choice_or("mode", "training", {"training", "prefill", "decode"});
  if (mode != "training") {
    throw_config_error(s.field_path("mode"),
                       "inference (prefill/decode) is not modelled yet; use \"training\"");
  }
  w.seq_len = s.integer_or("seq_len", 4096, 1, int64_t{1} << 24);
  w.global_batch = s.integer("global_batch", 1, int64_t{1} << 32);
  w.steps = static_cast<int>(s.integer_or("steps", 1, 1, 1000));
  const std::string dt = s.choice_or("dtype", "bf16", {"bf16", "fp16", "fp8"});
  w.compute_dtype = *hw::dtype_from_name(dt);
  s.finish();
  return w;
}

namespace {

// moe_a2a_overlap's preconditions: Megatron-Core's for "1f1b"
// (transformer_config.py __post_init__, overlap_moe_expert_parallel_comm
// asserts), DualPipe.step's for "dualpipe" (dualpipe/dualpipe.py), and
// moesim's own where its model would not mean anything.
void check_overlap(const ParallelConfig& p, const TrainingWorkload& w, int gpu_sms) {
  if (p.moe_a2a_overlap == MoeA2aOverlap::kNone) return;
  auto fail = [](const char* code, std::string msg) { throw InvalidStrategy(code, msg); };
  const std::string mode = overlap_name(p.moe_a2a_overlap);
  if (p.ep < 2) {
    fail("a2a_overlap_needs_ep",
         fmt::format("parallel.moe_a2a_overlap: \"{}\" hides expert-parallel all-to-alls and "
                     "needs ep > 1 (ep = {})",
                     mode, p.ep));
  }
  if (p.recompute == Recompute::kFull) {
    fail("a2a_overlap_recompute",
         fmt::format("parallel.moe_a2a_overlap: \"{}\" cannot run with \"recompute\": \"full\" "
                     "(Megatron-Core rejects full recomputation with the overlap); use "
                     "\"selective\" or \"none\"",
                     mode));
  }
  if (p.recompute == Recompute::kSelectiveMoe) {
    fail("a2a_overlap_recompute",
         fmt::format("parallel.moe_a2a_overlap: \"{}\" splits the MoE layer into parts that "
                     "overlap another micro-batch, which a checkpoint around the whole MoE layer "
                     "(\"recompute\": \"selective_moe\") does not allow; use \"selective\"",
                     mode));
  }
  if (p.offload_modules != 0) {
    fail("offload_activations",
         fmt::format("parallel.offload_activations: moesim models activation offload without "
                     "moe_a2a_overlap (it is \"{}\"); remove one of the two",
                     mode));
  }
  if (p.a2a_overlap_chunks != 1) {
    fail("a2a_overlap_chunks",
         fmt::format("parallel.moe_a2a_overlap: \"{}\" overlaps whole micro-batches; set "
                     "a2a_overlap_chunks to 1 (it is {})",
                     mode, p.a2a_overlap_chunks));
  }
  if (gpu_sms <= p.a2a_comm_sms) {
    fail("a2a_comm_sms",
         fmt::format("parallel.a2a_comm_sms: {} communication SMs must leave some of the GPU's {} "
                     "SMs to compute{}",
                     p.a2a_comm_sms, gpu_sms,
                     gpu_sms == 0 ? " (the GPU preset gives no \"sms\")" : ""));
  }
  const int64_t microbatches = w.microbatches(p);
  if (p.moe_a2a_overlap == MoeA2aOverlap::kOneFOneB) {
    if (p.pp > 1 && (p.schedule != PipelineSchedule::kInterleaved || p.virtual_stages < 2)) {
      fail("a2a_overlap_needs_vpp",
           fmt::format(
               "parallel.moe_a2a_overlap: \"1f1b\" with pp = {} needs \"pipeline_schedule\": "
               "\"interleaved\" and virtual_stages >= 2 (Megatron-Core requires virtual "
               "pipeline stages for the overlap when pp > 1)",
               p.pp));
    }
    return;
  }
  // DualPipe.
  if (p.pp < 2 || p.pp % 2 != 0) {
    fail("dualpipe_stages",
         fmt::format("parallel.pp: DualPipe needs an even number of pipeline stages >= 2 (pp = {})",
                     p.pp));
  }
  if (p.schedule != PipelineSchedule::kOneFOneB || p.virtual_stages != 1) {
    fail("dualpipe_stages",
         "parallel.pipeline_schedule: DualPipe is its own schedule (each rank holds two stages); "
         "leave pipeline_schedule \"1f1b\" and virtual_stages 1");
  }
  if (microbatches % 2 != 0 || microbatches < 2 * p.pp) {
    fail("dualpipe_microbatches",
         fmt::format("workload.global_batch: DualPipe needs an even number of micro-batches per "
                     "replica, at least 2 x pp = {} (there are {})",
                     2 * p.pp, microbatches));
  }
}

// Context parallelism and activation offload: Transformer Engine's and
// Megatron-Core's preconditions.
void check_cp_and_offload(const ModelShape& m, const ParallelConfig& p, const TrainingWorkload& w) {
  auto fail = [](const char* code, std::string msg) { throw InvalidStrategy(code, msg); };
  if (p.cp > 1 && w.seq_len % (2 * p.cp) != 0) {
    // Causal load balancing: AttnFuncWithCPAndKVP2P splits every sequence
    // into 2 x cp equal chunks (rank i holds chunks i and 2cp-1-i).
    fail("cp_divides_sequence",
         fmt::format("parallel.cp: 2 x cp = {} must divide workload.seq_len = {} (Transformer "
                     "Engine splits each sequence into 2 x cp chunks for causal load balance)",
                     2 * p.cp, w.seq_len));
  }
  using exec::OffloadModule;
  if (p.offloads(OffloadModule::kAttnProj) && !p.offloads(OffloadModule::kCoreAttn)) {
    // transformer_config.py: attn_proj's input is core_attn's output.
    fail("offload_activations",
         "parallel.offload_activations: \"attn_proj\" needs \"core_attn\" too (the input of "
         "attn_proj is the output of core_attn, which core_attn's backward needs)");
  }
  if (p.offload_modules != 0 && p.recompute == Recompute::kFull) {
    fail("offload_activations",
         "parallel.offload_activations: full recompute keeps only each layer's input; offload "
         "modules with \"recompute\": \"none\", \"selective\" or \"selective_moe\"");
  }
  if (p.recompute == Recompute::kSelectiveMoe &&
      (p.offloads(OffloadModule::kExpertFc1) || p.offloads(OffloadModule::kMoeAct))) {
    // transformer_config.py: offloading inside a recomputed MoE layer is rejected.
    fail("offload_activations",
         "parallel.offload_activations: \"expert_fc1\" and \"moe_act\" live inside the MoE "
         "layer that \"recompute\": \"selective_moe\" recomputes; remove them or recompute "
         "\"selective\"");
  }
  if (p.recompute == Recompute::kSelectiveMoe && m.experts == 0) {
    fail("selective_moe_needs_experts",
         "parallel.recompute: \"selective_moe\" recomputes MoE layers; the model has none");
  }
}

}  // namespace

void check_strategy(const ModelShape& m, const ParallelConfig& p, const TrainingWorkload& w,
                    int cluster_gpus, int gpu_sms) {
  auto fail = [](const char* code, std::string msg) { throw InvalidStrategy(code, msg); };
  if (p.gpus() != cluster_gpus) {
    fail("gpu_count",
         p.cp == 1 ? fmt::format("parallel: dp x tp x pp = {} x {} x {} = {} must equal the "
                                 "cluster's {} GPUs",
                                 p.dp, p.tp, p.pp, p.gpus(), cluster_gpus)
                   : fmt::format("parallel: dp x tp x cp x pp = {} x {} x {} x {} = {} must equal "
                                 "the cluster's {} GPUs",
                                 p.dp, p.tp, p.cp, p.pp, p.gpus(), cluster_gpus));
  }
  if (m.heads % p.tp != 0 ||
      (m.kv_heads > 0 && !m.is_mla() && m.kv_heads % p.tp != 0 && p.tp % m.kv_heads != 0)) {
    fail("tp_divides_heads",
         fmt::format("parallel.tp: {} must divide the model's {} attention heads (and its {} "
                     "KV heads, or be a multiple of them)",
                     p.tp, m.heads, m.kv_heads));
  }
  if ((m.dense_ffn > 0 && m.dense_ffn % p.tp != 0) ||
      (m.shared_ffn > 0 && m.shared_ffn % p.tp != 0)) {
    fail("tp_divides_ffn", fmt::format("parallel.tp: {} must divide the FFN widths", p.tp));
  }
  if (m.experts > 0) {
    if (m.slots() % p.ep != 0) {
      fail("ep_divides_experts", fmt::format("parallel.ep: {} must divide the model's {} "
                                             "routed experts (plus redundant replicas)",
                                             p.ep, m.slots()));
    }
    if (m.expert_ffn % p.etp != 0) {
      fail("etp_divides_ffn", fmt::format("parallel.etp: {} must divide the expert FFN width {}",
                                          p.etp, m.expert_ffn));
    }
    if ((p.dp * p.tp * p.cp) % (p.ep * p.etp) != 0) {
      fail("expert_grid",
           p.cp == 1
               ? fmt::format("parallel: ep x etp = {} must divide dp x tp = {} (experts are "
                             "sharded within each pipeline stage's data- and tensor-parallel "
                             "ranks)",
                             p.ep * p.etp, p.dp * p.tp)
               : fmt::format("parallel: ep x etp = {} must divide dp x tp x cp = {} (experts are "
                             "sharded within each pipeline stage's data-, tensor- and context-"
                             "parallel ranks)",
                             p.ep * p.etp, p.dp * p.tp * p.cp));
    }
    if (p.tp > 1 && p.ep > 1 && !p.sequence_parallel) {
      fail("sequence_parallel_required",
           "parallel.sequence_parallel: must be true when tp > 1 and ep > 1 (each tensor-"
           "parallel rank dispatches its own sequence shard, as Megatron-Core requires)");
    }
  } else if (p.ep != 1 || p.etp != 1) {
    fail("ep_divides_experts", "parallel.ep: the model has no routed experts; use ep = 1");
  }
  check_cp_and_offload(m, p, w);
  // Each context-parallel rank holds seq_len / cp tokens of every sequence.
  if ((w.seq_len / p.cp * p.micro_batch_size) % p.tp != 0) {
    fail("tp_divides_tokens",
         fmt::format("parallel.tp: {} must divide the tokens per micro-batch{} ({})", p.tp,
                     p.cp > 1 ? " on each context-parallel rank" : "",
                     w.seq_len / p.cp * p.micro_batch_size));
  }
  const int64_t per_replica = static_cast<int64_t>(p.dp) * p.micro_batch_size;
  if (w.global_batch % per_replica != 0) {
    fail("batch_divisible",
         fmt::format("workload.global_batch: {} must be a multiple of dp x micro_batch_size = {}",
                     w.global_batch, per_replica));
  }
  // The memory model walks each stage's schedule pass by pass, so a step's
  // micro-batches need a bound the program can hold; a real step has
  // hundreds to thousands (DeepSeek-V3: 15,360 sequences over dp 128).
  constexpr int64_t kMaxMicrobatches = int64_t{1} << 20;
  if (w.global_batch / per_replica > kMaxMicrobatches) {
    fail("microbatch_count",
         fmt::format("workload.global_batch: {} sequences make {} micro-batches per step on each "
                     "pipeline (global_batch / (dp x micro_batch_size)), more than {}; raise dp or "
                     "micro_batch_size or lower the batch",
                     w.global_batch, w.global_batch / per_replica, kMaxMicrobatches));
  }
  if (!p.layout.empty()) {
    check_pipeline_layout(m, p);
  } else {
    // Virtual stages may outnumber layers by a few (Megatron-LM counts the
    // embedding and the loss as layers when splitting); every stage needs
    // one. MTP modules join the last stage.
    const int layers = m.model_layers();
    if (layers < p.pp) {
      fail("pipeline_layers",
           fmt::format("parallel.pp: {} exceeds the model's {} layers", p.pp, layers));
    }
    const int shares = layers + (p.embedding_and_loss_as_layers ? 2 : 0);
    if (static_cast<int64_t>(p.pp) * p.virtual_stages > shares) {
      fail("pipeline_layers",
           fmt::format("parallel.virtual_stages: pp x virtual_stages = {} x {} = {} virtual "
                       "stages exceed the model's {} layers{} (every virtual stage needs a "
                       "layer)",
                       p.pp, p.virtual_stages, p.pp * p.virtual_stages, layers,
                       p.embedding_and_loss_as_layers ? " plus embedding and loss" : ""));
    }
  }
  if (p.schedule == PipelineSchedule::kInterleaved && p.virtual_stages > 1 &&
      w.microbatches(p) % p.pp != 0) {
    fail("interleave_microbatches",
         fmt::format("parallel.pipeline_schedule: interleaving needs the {} micro-batches per "
                     "replica to be a multiple of pp = {}",
                     w.microbatches(p), p.pp));
  }
  check_overlap(p, w, gpu_sms);
}

Json parallel_json(const ParallelConfig& p) {
  Json j;
  j["dp"] = p.dp;
  j["tp"] = p.tp;
  j["pp"] = p.pp;
  j["ep"] = p.ep;
  j["etp"] = p.etp;
  j["sequence_parallel"] = p.sequence_parallel;
  j["zero_stage"] = p.zero_stage;
  j["micro_batch_size"] = p.micro_batch_size;
  j["pipeline_schedule"] = p.schedule == PipelineSchedule::kOneFOneB ? "1f1b" : "interleaved";
  j["virtual_stages"] = p.virtual_stages;
  j["account_for_embedding_and_loss"] = p.embedding_and_loss_as_layers;
  if (!p.layout.empty()) j["pipeline_layout"] = p.layout_text;
  j["recompute"] = p.recompute == Recompute::kNone           ? "none"
                   : p.recompute == Recompute::kSelective    ? "selective"
                   : p.recompute == Recompute::kSelectiveMoe ? "selective_moe"
                                                             : "full";
  // Without context parallelism, the names reports have always carried.
  j["rank_order"] = p.cp == 1 ? (p.pp_outer_of_dp ? "tp-ep-dp-pp" : "tp-ep-pp-dp")
                              : (p.pp_outer_of_dp ? "tp-cp-ep-dp-pp" : "tp-cp-ep-pp-dp");
  j["overlap_grad_reduce"] = p.overlap_grad_reduce;
  j["overlap_param_gather"] = p.overlap_param_gather;
  j["a2a_overlap_chunks"] = p.a2a_overlap_chunks;
  j["a2a_algo"] = std::string(coll::algorithm_name(p.a2a_algo));
  j["dispatch_dtype"] = std::string(hw::dtype_name(p.dispatch_dtype));
  j["cross_entropy_loss_fusion"] = p.cross_entropy_loss_fusion;
  // Written only when set, so that reports of scenarios without it keep
  // their bytes.
  if (p.moe_a2a_overlap != MoeA2aOverlap::kNone) {
    j["moe_a2a_overlap"] = overlap_name(p.moe_a2a_overlap);
    j["a2a_comm_sms"] = p.a2a_comm_sms;
  }
  if (p.cp > 1) j["cp"] = p.cp;
  if (p.adam.precision_aware) {
    j["use_precision_aware_optimizer"] = true;
    j["exp_avg_dtype"] = std::string(hw::dtype_name(p.adam.exp_avg));
    j["exp_avg_sq_dtype"] = std::string(hw::dtype_name(p.adam.exp_avg_sq));
    j["store_param_remainders"] = p.adam.store_param_remainders;
  }
  if (p.offload_modules != 0) {
    Json modules = Json::array();
    for (size_t i = 0; i < std::size(kOffloadModuleNames); ++i) {
      if (p.offloads(static_cast<exec::OffloadModule>(i)))
        modules.push_back(std::string(kOffloadModuleNames[i]));
    }
    j["offload_activations"] = modules;
  }
  return j;
}

Json workload_json(const TrainingWorkload& w) {
  Json j;
  j["mode"] = "training";
  j["seq_len"] = w.seq_len;
  j["global_batch"] = w.global_batch;
  j["steps"] = w.steps;
  j["dtype"] = std::string(hw::dtype_name(w.compute_dtype));
  return j;
}

}  // namespace moesim::scenario
