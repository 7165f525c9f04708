#include "sim/exec/inference_costs.h"

#include "sim/exec/two_batch_overlap.h"

#include <algorithm>
#include <numeric>

namespace moesim::exec {
namespace {

double element_bytes(hw::DType t) {
  return hw::bytes_per_element(t);
}

// Splits a replica's work into two micro-batches of about equal tokens (SGLang
// two_batch_overlap.py: decode at half the sequences, prefill at the sequence
// boundary that best balances tokens, cutting a single prompt in two).
std::pair<ReplicaBatch, ReplicaBatch> split(const ReplicaBatch& b) {
  ReplicaBatch a, c;
  a.decode_sequences = b.decode_sequences / 2;
  c.decode_sequences = b.decode_sequences - a.decode_sequences;
  if (b.decode_sequences > 0) {
    a.decode_context_tokens = b.decode_context_tokens * a.decode_sequences / b.decode_sequences;
  }
  c.decode_context_tokens = b.decode_context_tokens - a.decode_context_tokens;
  if (b.decode_sequences > 0) {
    a.decode_window_keys = b.decode_window_keys * a.decode_sequences / b.decode_sequences;
  }
  c.decode_window_keys = b.decode_window_keys - a.decode_window_keys;
  if (b.prefill.size() == 1) {
    const ReplicaBatch::Chunk& only = b.prefill.front();
    const int64_t first = only.tokens / 2;
    if (first > 0) a.prefill.push_back({first, only.context});
    c.prefill.push_back({only.tokens - first, only.context + first});
  } else {
    int64_t ta = 0, tc = 0;
    for (const ReplicaBatch::Chunk& ch : b.prefill) {
      (ta <= tc ? a : c).prefill.push_back(ch);
      (ta <= tc ? ta : tc) += ch.tokens;
    }
  }
  a.sampled = b.sampled / 2;
  c.sampled = b.sampled - a.sampled;
  return {a, c};
}

bool has_prompt(std::span<const ReplicaBatch> replicas) {
  return std::any_of(replicas.begin(), replicas.end(),
                     [](const ReplicaBatch& b) { return !b.prefill.empty(); });
}

}  // namespace

void ReplicaBatch::add_decode(const ModelShape& model, int64_t context) {
  ++decode_sequences;
  decode_context_tokens += context;
  if (model.has_window()) decode_window_keys += model.windowed_cached_keys(context);
}

int64_t ReplicaBatch::tokens() const {
  int64_t t = decode_sequences;
  for (const Chunk& c : prefill) t += c.tokens;
  return t;
}

InferenceCostModel::InferenceCostModel(const ModelShape& model, const InferenceParallel& parallel,
                                       hw::DType weight_dtype, hw::DType kv_dtype,
                                       const hw::ComputeCostModel& cost,
                                       CollectiveSeconds collective, std::vector<int> gpu_ranks,
                                       int gpu_sms)
    : model_(model),
      parallel_(parallel),
      weight_dtype_(weight_dtype),
      kv_dtype_(kv_dtype),
      cost_(cost),
      collective_(std::move(collective)),
      gpu_ranks_(std::move(gpu_ranks)),
      gpu_sms_(gpu_sms) {
  for (size_t g = 0; g < gpu_ranks_.size(); g += parallel_.expert_tp()) {
    ep_ranks_.push_back(gpu_ranks_[g]);
  }
}

double InferenceCostModel::kv_bytes_per_token_per_gpu() const {
  const double elt = element_bytes(kv_dtype_);
  if (model_.is_mla()) {
    // The latent and the decoupled RoPE key, one "head" every TP rank keeps
    // whole (SGLang MLATokenToKVPool: kv_lora_rank + qk_rope_head_dim).
    return model_.layers * static_cast<double>(model_.kv_lora_rank + model_.qk_rope_head_dim) * elt;
  }
  const double kv_heads =
      std::max(1.0, static_cast<double>(model_.kv_heads) / parallel_.tp);  // replicated below 1
  return model_.layers * 2.0 * kv_heads * static_cast<double>(model_.head_dim) * elt;
}

InferenceCostModel::ChunkReach InferenceCostModel::reach(const ReplicaBatch::Chunk& c,
                                                         bool windowed) const {
  if (!windowed) {
    return {static_cast<double>(c.tokens) * (static_cast<double>(c.context) + c.tokens / 2.0),
            c.context + c.tokens, c.context + c.tokens};
  }
  return {model_.windowed_keys(c.context, c.tokens),
          std::min(c.context + c.tokens, model_.window_tokens),
          model_.windowed_cached_keys(c.context) + c.tokens};
}

// Attention of one replica's batch on one of its GPUs: projections on every
// new token; core attention quadratic in the context for prefill (causal,
// flash), reading the KV cache for decode; on a windowed layer each query
// reaches only its window.
InferenceCostModel::AttentionSeconds InferenceCostModel::attention_seconds(const ReplicaBatch& b,
                                                                           bool windowed) const {
  const int64_t tokens = b.tokens();
  if (tokens == 0) return {};
  const hw::DType dt = weight_dtype_;
  const int t = parallel_.tp;
  const int64_t h = model_.hidden;
  const double heads = static_cast<double>(model_.heads) / t;
  const double kv_elt = element_bytes(kv_dtype_);
  // Two RMSNorms over the BF16 residual stream, whatever the GEMMs' dtype.
  double s = 2 * cost_.memory_bound_seconds(2.0 * tokens * h * element_bytes(hw::DType::kBf16));
  double deep_gemm = 0;
  // Prefill chunks run as one varlen flash-attention launch, each sequence at
  // the rate of its own length (ComputeCostModel::attention_seconds: the
  // head dim, the keys it reaches); decode tokens as a kernel of their own.
  const double launch = cost_.launch_overhead_seconds();
  double prefill_core = 0, decode_flops = 0, decode_bytes = 0;
  auto prefill_chunk = [&](const ChunkReach& r, double flops, double bytes) {
    prefill_core += cost_.attention_seconds({.flops = flops,
                                             .bytes = bytes,
                                             .head_dim = model_.attention_kernel_head_dim(),
                                             .span = r.span,
                                             .causal = true,
                                             .pass = hw::AttentionKernel::Pass::kForward,
                                             .dtype = hw::DType::kBf16}) -
                    launch;
  };
  double mla_decode_flops = 0, mla_decode_bytes = 0;
  if (model_.is_mla()) {
    const int64_t nope = model_.qk_nope_head_dim, rope = model_.qk_rope_head_dim;
    const int64_t latent = model_.kv_lora_rank, v = model_.v_head_dim;
    const int64_t hq = model_.heads * (nope + rope) / t;
    s += model_.q_lora_rank > 0 ? linear_seconds(tokens, model_.q_lora_rank, h, deep_gemm) +
                                      linear_seconds(tokens, hq, model_.q_lora_rank, deep_gemm)
                                : linear_seconds(tokens, hq, h, deep_gemm);
    s += linear_seconds(tokens, latent + rope, h, deep_gemm);
    s += linear_seconds(tokens, h, model_.heads * v / t, deep_gemm);
    // Inputs of the FP8 projections: the hidden state once (SGLang fuses
    // q_a_proj with kv_a_proj_with_mqa), q_b's and o_proj's.
    s += input_quant_seconds(static_cast<double>(tokens) *
                             (h + model_.q_lora_rank + static_cast<double>(model_.heads) * v / t));
    int64_t prefill_tokens = 0;
    double context_tokens = 0, merged_tokens = 0;  // chunks that continue a prompt
    for (const ReplicaBatch::Chunk& c : b.prefill) {
      prefill_tokens += c.tokens;
      if (c.context > 0) {
        context_tokens += static_cast<double>(c.context);
        merged_tokens += static_cast<double>(c.tokens);
      }
      // Prefill up-projects keys and values (kv_b_proj) and attends per head,
      // a multi-head flash attention over BF16 tensors (SGLang forward_normal:
      // FA3 with q.k head dim 192 and v 128): it reads the chunk's queries
      // and the context's keys and values, and writes the chunk's outputs.
      const ChunkReach r = reach(c, windowed);
      const double qk = static_cast<double>(nope + rope);
      prefill_chunk(r, 2.0 * r.keys * heads * (qk + v),
                    heads * element_bytes(hw::DType::kBf16) *
                        (c.tokens * (qk + v) + static_cast<double>(r.read) * (qk + v)));
    }
    if (prefill_tokens > 0) {
      s += linear_seconds(prefill_tokens, model_.heads * (nope + v) / t, latent, deep_gemm);
      s += input_quant_seconds(static_cast<double>(prefill_tokens) * latent);
      // The BF16 tensors the flash kernel reads are assembled by copies
      // (SGLang DeepseekV2AttentionMLA.forward_normal, models/deepseek_v2.py):
      // RoPE reads and writes q_pe, `q[..., nope:] = q_pe` copies it back,
      // `k[..., :nope] = k_nope` copies the up-projected keys, and
      // `k[..., nope:] = k_pe` writes the shared RoPE key into every head.
      const double per_head = 2.0 * rope + 2.0 * rope + 2.0 * nope + rope;
      s += cost_.memory_bound_seconds(static_cast<double>(prefill_tokens) * heads * per_head *
                                      element_bytes(hw::DType::kBf16));
    }
    if (context_tokens > 0) {
      // A chunk that continues a prompt attends to its cached context in the
      // same per-head form, so the context is expanded again for every chunk
      // (vLLM MLACommonImpl._compute_prefill_context, attention/backends/mla/
      // common.py; SGLang forward_normal_chunked_kv): the latents gathered
      // from the cache into a BF16 workspace, kv_b_proj over them, k
      // assembled, then the context's attention merged with the chunk's own
      // (merge_attn_states: two partial outputs read, one written).
      const double bf16 = element_bytes(hw::DType::kBf16);
      s += cost_.memory_bound_seconds(context_tokens * static_cast<double>(latent + rope) *
                                      (kv_elt + bf16));
      s += linear_seconds(static_cast<int64_t>(context_tokens), model_.heads * (nope + v) / t,
                          latent, deep_gemm);
      s += input_quant_seconds(context_tokens * latent);
      s += cost_.memory_bound_seconds(context_tokens * heads * (2.0 * nope + rope) * bf16);
      s += cost_.memory_bound_seconds(3.0 * merged_tokens * heads * v * bf16);
    }
    if (b.decode_sequences > 0) {
      // Decode absorbs the up-projections into the query and output (FlashMLA:
      // 2 x heads x (576 + 512) FLOPs and 576 cached elements per context token).
      s += cost_.gemm_seconds(b.decode_sequences, model_.heads * latent / t, nope, dt);
      s += cost_.gemm_seconds(b.decode_sequences, model_.heads * v / t, latent, dt);
      // Their inputs, the query's no-RoPE part and the attention output per
      // head (SGLang quantizes both for its FP8 bmm, per_tensor_quant_mla_fp8).
      s += input_quant_seconds(static_cast<double>(b.decode_sequences) * model_.heads *
                               (nope + latent) / t);
      const double ctx =
          static_cast<double>(windowed ? b.decode_window_keys : b.decode_context_tokens);
      mla_decode_flops = 2.0 * ctx * heads * static_cast<double>(latent + rope + latent);
      mla_decode_bytes = ctx * static_cast<double>(latent + rope) * kv_elt;
    }
  } else {
    const int64_t hd = model_.head_dim;
    const double kv_heads = std::max(1.0, static_cast<double>(model_.kv_heads) / t);
    s += linear_seconds(tokens, static_cast<int64_t>((heads + 2 * kv_heads) * hd), h, deep_gemm);
    s += linear_seconds(tokens, h, static_cast<int64_t>(heads * hd), deep_gemm);
    s += input_quant_seconds(static_cast<double>(tokens) * (h + heads * hd));
    for (const ReplicaBatch::Chunk& c : b.prefill) {
      const ChunkReach r = reach(c, windowed);
      prefill_chunk(r, 4.0 * r.keys * heads * hd, r.read * 2.0 * kv_heads * hd * kv_elt);
    }
    // Decode reads each sequence's cache once: memory-bound, on the roofline.
    const double ctx =
        static_cast<double>(windowed ? b.decode_window_keys : b.decode_context_tokens);
    decode_flops = 4.0 * ctx * heads * hd;
    decode_bytes = ctx * 2.0 * kv_heads * hd * kv_elt;
  }
  // Writing this iteration's keys and values into the cache, then attention
  // in BF16 (FP8 weights still attend in BF16 in FlashMLA and FA3-BF16).
  // Decode tokens run as a kernel of their own beside the prefill chunks'
  // (vLLM MLACommonImpl.forward splits the batch into decode and prefill
  // calls; SGLang's disaggregated decode runs decode-only batches).
  double core = cost_.memory_bound_seconds(tokens * kv_bytes_per_token_per_gpu() / model_.layers);
  if (!b.prefill.empty()) core += prefill_core + launch;
  if (decode_flops > 0)
    core += cost_.fused_kernel_seconds(decode_flops, decode_bytes, hw::DType::kBf16);
  if (mla_decode_flops > 0)
    core += cost_.mla_decode_seconds(mla_decode_flops, mla_decode_bytes, kv_dtype_);
  return {s, core, deep_gemm};
}

// A dense FFN (or the shared experts) of `width` on `tokens`, tensor-parallel
// over the replica.
InferenceCostModel::FfnSeconds InferenceCostModel::ffn_seconds(int64_t tokens,
                                                               int64_t width) const {
  if (tokens == 0 || width == 0) return {};
  const int64_t w = width / parallel_.tp;
  const double act = cost_.memory_bound_seconds(tokens * (model_.swiglu ? 3.0 : 2.0) * w *
                                                element_bytes(hw::DType::kBf16));
  FfnSeconds out;
  out.all = act + input_quant_seconds(static_cast<double>(tokens) * (model_.hidden + w)) +
            linear_seconds(tokens, model_.swiglu ? 2 * w : w, model_.hidden, out.gemm) +
            linear_seconds(tokens, model_.hidden, w, out.gemm);
  return out;
}

// SGLang runs block-FP8 linears on DeepGEMM's GEMM kernel on Hopper
// (layers/quantization/fp8_utils.py dispatching to deep_gemm_wrapper when
// ENABLE_JIT_DEEPGEMM); BF16 ones on cuBLAS.
double InferenceCostModel::linear_seconds(int64_t m, int64_t n, int64_t k,
                                          double& deep_gemm) const {
  const double seconds = cost_.gemm_seconds(m, n, k, weight_dtype_);
  if (weight_dtype_ == hw::DType::kFp8) deep_gemm += seconds;
  return seconds;
}

// The routed experts on a GPU of EP rank `rank`: two grouped GEMMs sized by
// what each local expert received (an expert no token chose costs nothing:
// its weights are not read), each GPU of the rank computing its 1/expert_tp
// slice of the FFN for all of them, and the activation between them.
double InferenceCostModel::expert_seconds(const RoutingSample& rs, int rank,
                                          coll::AllToAllAlgorithm algo) const {
  const int local = rs.local_experts;
  const int64_t f = model_.expert_ffn / parallel_.expert_tp();
  std::vector<int64_t> m(local);
  int64_t routed = 0;
  for (int e = 0; e < local; ++e) {
    m[e] = rs.expert_tokens[static_cast<size_t>(rank) * local + e];
    routed += m[e];
  }
  if (routed == 0) return 0;
  const int64_t up = model_.swiglu ? 2 * f : f;
  const hw::DType dt = weight_dtype_;
  // FP8 experts: tokens dispatched in BF16 are quantized on arrival (FP8
  // dispatch arrives quantized); the down projection's input is quantized
  // after the activation by a pass of its own behind DeepEP's normal kernels
  // (SGLang DeepEPMoE.forward_deepgemm_contiguous:
  // sglang_per_token_group_quant_fp8), by the activation kernel itself behind
  // the low-latency ones (forward_deepgemm_masked:
  // silu_and_mul_masked_post_quant_fwd; layers/moe/ep_moe/layer.py).
  double quant = parallel_.dispatch_dtype == hw::DType::kFp8
                     ? 0
                     : input_quant_seconds(static_cast<double>(routed) * model_.hidden);
  if (algo != coll::AllToAllAlgorithm::kLowLatency) {
    quant += input_quant_seconds(static_cast<double>(routed) * f);
  }
  return quant + cost_.grouped_gemm_seconds(m, up, model_.hidden, dt) +
         cost_.grouped_gemm_seconds(m, model_.hidden, f, dt) +
         cost_.memory_bound_seconds(routed * static_cast<double>(up + f) *
                                    element_bytes(hw::DType::kBf16));
}

// Block-FP8 linear layers first quantize their BF16 input per token in
// groups of 128 (per_token_group_quant_fp8 in SGLang's and vLLM's
// apply_w8a8_block_fp8_linear, layers/quantization/fp8_utils.py): a
// memory-bound pass reading BF16 and writing FP8 plus an FP32 scale per group.
double InferenceCostModel::input_quant_seconds(double elements) const {
  return weight_dtype_ == hw::DType::kFp8 ? cost_.fp8_cast_seconds(elements) : 0;
}

double InferenceCostModel::all_to_all_seconds(const RoutingSample& rs, bool combine,
                                              coll::AllToAllAlgorithm algo) const {
  if (parallel_.ep <= 1) return 0;
  coll::Collective a2a;
  a2a.op = coll::CollectiveOp::kAllToAllV;
  a2a.ranks = ep_ranks_;
  a2a.algorithm = algo;
  a2a.transpose = combine;
  const double elt = element_bytes(hw::DType::kBf16);
  if (combine) {
    a2a.bytes_per_copy = model_.hidden * elt;
  } else {
    a2a.bytes_per_copy = parallel_.dispatch_dtype == hw::DType::kFp8
                             ? model_.hidden * (1.0 + 4.0 / 128)
                             : model_.hidden * elt;
    if (algo == coll::AllToAllAlgorithm::kLowLatency) a2a.bytes_per_copy += 16;
  }
  if (algo == coll::AllToAllAlgorithm::kHierarchical && !rs.rank_tokens.empty()) {
    a2a.rank_tokens = rs.rank_tokens;
    a2a.node_tokens = rs.node_tokens;
  } else {
    a2a.token_copies = rs.pair_tokens;
  }
  return collective_(a2a);
}

double InferenceCostModel::tp_all_reduce_seconds(int64_t tokens) const {
  if (parallel_.tp <= 1 || tokens == 0) return 0;
  coll::Collective ar;
  ar.op = coll::CollectiveOp::kAllReduce;
  ar.ranks = std::span<const int>(gpu_ranks_.data(), parallel_.tp);
  ar.bytes = tokens * static_cast<double>(model_.hidden) * element_bytes(hw::DType::kBf16);
  return collective_(ar);
}

// The embedding lookup and the LM head on the sampled rows, on the slowest
// replica. Serving frameworks run both on the whole batch: two-batch overlap
// splits the decoder layers only (SGLang two_batch_overlap.py
// model_forward_maybe_tbo over self.layers; the logits processor runs after,
// models/deepseek_v2.py), so the LM head's weights are read once.
double InferenceCostModel::head_seconds(std::span<const ReplicaBatch> replicas) const {
  const int t = parallel_.tp;
  const double elt = element_bytes(hw::DType::kBf16);
  double head_s = 0;
  for (const ReplicaBatch& b : replicas) {
    head_s = std::max(head_s, cost_.memory_bound_seconds(2.0 * b.tokens() * model_.hidden * elt) +
                                  cost_.gemm_seconds(b.sampled, model_.vocab / t, model_.hidden,
                                                     unquantized_dtype()));
  }
  return head_s;
}

std::vector<LayerCost> InferenceCostModel::layers(std::span<const ReplicaBatch> replicas,
                                                  IterationRouting& routing, uint64_t routing_index,
                                                  coll::AllToAllAlgorithm algo) const {
  const int t = parallel_.tp;
  const int etp = parallel_.expert_tp();
  double attention_core = 0, windowed_core = 0, router = 0;
  AttentionSeconds slowest_attention;  // the replica with the longest projections
  FfnSeconds shared, dense;
  int64_t most_tokens = 0;
  std::vector<int64_t> tokens_per_rank(parallel_.ep, 0);
  // An EP rank's sequences: those of the replica its first GPU serves.
  std::vector<int32_t> replica_of_rank(parallel_.ep, 0);
  std::vector<int64_t> sequences_of_rank(parallel_.ep, 0);
  for (size_t r = 0; r < replicas.size(); ++r) {
    const ReplicaBatch& b = replicas[r];
    const int64_t tokens = b.tokens();
    most_tokens = std::max(most_tokens, tokens);
    const AttentionSeconds attention = attention_seconds(b, false);
    if (attention.prep > slowest_attention.prep) slowest_attention = attention;
    attention_core = std::max(attention_core, attention.core);
    if (model_.has_window()) {
      windowed_core = std::max(windowed_core, attention_seconds(b, true).core);
    }
    // Replicas differ in token count only, so the slowest FFN is the one of
    // the most tokens, GEMM share included.
    const FfnSeconds replica_shared = ffn_seconds(tokens, model_.shared_ffn);
    const FfnSeconds replica_dense = ffn_seconds(tokens, model_.dense_ffn);
    if (replica_shared.all > shared.all) shared = replica_shared;
    if (replica_dense.all > dense.all) dense = replica_dense;
    const double copies = static_cast<double>(tokens) / t * model_.top_k;
    const double elt = element_bytes(hw::DType::kBf16);
    router = std::max(
        router, cost_.gemm_seconds(tokens / t + (tokens % t ? 1 : 0), model_.experts, model_.hidden,
                                   unquantized_dtype()) +
                    cost_.memory_bound_seconds((3 * copies + tokens) * model_.hidden * elt));
    // The replica's tokens enter the MoE block split over its tp GPUs; an EP
    // rank gathers the tokens of its expert_tp GPUs.
    for (int g = 0; g < t; ++g) {
      const size_t gpu = r * t + g;
      tokens_per_rank[gpu / etp] += tokens / t + (g < tokens % t ? 1 : 0);
      if (gpu % etp == 0) {
        replica_of_rank[gpu / etp] = static_cast<int32_t>(r);
        sequences_of_rank[gpu / etp] = static_cast<int64_t>(b.prefill.size()) + b.decode_sequences;
      }
    }
  }
  const double tp_comm = 2 * tp_all_reduce_seconds(most_tokens);  // after attention and the FFN
  const std::vector<RoutingSample>* samples = nullptr;
  if (model_.experts > 0 && most_tokens > 0) {
    samples = &routing.route(routing_index, tokens_per_rank,
                             IterationSequences{replica_of_rank, sequences_of_rank});
  }
  // Each distinct sample is priced once; MoE layer j plays sample j mod n.
  struct SampleCost {
    double expert = 0, dispatch = 0, combine = 0;
  };
  std::vector<SampleCost> sample_costs;
  if (samples) {
    for (const RoutingSample& rs : *samples) {
      SampleCost c;
      for (int r = 0; r < parallel_.ep; ++r)
        c.expert = std::max(c.expert, expert_seconds(rs, r, algo));
      c.dispatch = all_to_all_seconds(rs, false, algo);
      c.combine = all_to_all_seconds(rs, true, algo);
      sample_costs.push_back(c);
    }
  }
  std::vector<LayerCost> out(model_.layers);
  size_t moe_ordinal = 0;
  for (int l = 0; l < model_.layers; ++l) {
    LayerCost& p = out[l];
    p.attention_prep = slowest_attention.prep;
    p.attention_prep_gemm = slowest_attention.prep_gemm;
    p.attention_core =
        model_.has_window() && model_.windowed_layer[l] ? windowed_core : attention_core;
    p.other = tp_comm;
    if (!model_.moe_layer[l] || sample_costs.empty()) {
      p.dense = model_.moe_layer[l] ? 0 : dense.all;
      p.dense_gemm = model_.moe_layer[l] ? 0 : dense.gemm;
      continue;
    }
    const SampleCost& c = sample_costs[moe_ordinal++ % sample_costs.size()];
    p.moe = true;
    p.router = router;
    p.shared = shared.all;
    p.shared_gemm = shared.gemm;
    p.expert = c.expert;
    p.dispatch = c.dispatch;
    p.combine = c.combine;
  }
  return out;
}

// SGLang's --deepep-mode auto picks the kernels per iteration (see a2a_auto).
coll::AllToAllAlgorithm InferenceCostModel::algorithm(bool prompt) const {
  if (!parallel_.a2a_auto) return parallel_.a2a_algo;
  return prompt ? coll::AllToAllAlgorithm::kHierarchical : coll::AllToAllAlgorithm::kLowLatency;
}

std::vector<std::vector<LayerCost>> InferenceCostModel::layer_parts(
    std::span<const ReplicaBatch> replicas, IterationRouting& routing,
    uint64_t iteration_index) const {
  const coll::AllToAllAlgorithm algo = algorithm(has_prompt(replicas));
  if (!parallel_.two_batch_overlap) return {layers(replicas, routing, 2 * iteration_index, algo)};
  // Two micro-batches: each replica's work split in two.
  std::vector<ReplicaBatch> first, second;
  for (const ReplicaBatch& b : replicas) {
    auto [a, c] = split(b);
    first.push_back(std::move(a));
    second.push_back(std::move(c));
  }
  return {layers(first, routing, 2 * iteration_index, algo),
          layers(second, routing, 2 * iteration_index + 1, algo)};
}

IterationCost InferenceCostModel::iteration(std::span<const ReplicaBatch> replicas,
                                            IterationRouting& routing,
                                            uint64_t iteration_index) const {
  IterationCost cost;
  const bool prompt = has_prompt(replicas);
  const coll::AllToAllAlgorithm algo = algorithm(prompt);
  const std::vector<std::vector<LayerCost>> parts = layer_parts(replicas, routing, iteration_index);
  if (parts.size() == 1) {
    for (const LayerCost& p : parts[0]) {
      // One stream, in order: SGLang's forward_deepep (models/deepseek_v2.py)
      // runs the shared experts before it launches the dispatch, and waits
      // for the dispatch before the routed experts, so nothing is hidden.
      cost.attention_s += p.attention_prep + p.attention_core;
      cost.expert_s += p.expert + p.dense + p.shared;
      cost.dispatch_s += p.dispatch;
      cost.combine_s += p.combine;
      cost.other_s += p.other + p.router;
    }
    cost.other_s += head_seconds(replicas);
    cost.seconds =
        cost.attention_s + cost.expert_s + cost.dispatch_s + cost.combine_s + cost.other_s;
    return cost;
  }
  // Normal-mode kernels hold comm_sms SMs while they run; low-latency ones
  // hold none in flight. SGLang's prefill strategy gives DeepGEMM the SMs
  // DeepEP leaves (deep_gemm_num_sms), its decode strategy does not.
  const double stretch =
      algo != coll::AllToAllAlgorithm::kLowLatency && gpu_sms_ > parallel_.comm_sms
          ? static_cast<double>(gpu_sms_) / (gpu_sms_ - parallel_.comm_sms)
          : 1.0;
  const OverlapSchedule schedule = prompt ? OverlapSchedule::kPrefill : OverlapSchedule::kDecode;
  OverlapSlowdown slowdown;
  slowdown.in_flight = stretch;
  slowdown.deep_gemm = schedule == OverlapSchedule::kPrefill ? stretch : 1.0;
  cost = two_batch_overlap(parts[0], parts[1], schedule, slowdown);
  const double head = head_seconds(replicas);
  cost.other_s += head;
  cost.seconds += head;
  return cost;
}

}  // namespace moesim::exec
