#include "sim/exec/layer_costs.h"

#include <algorithm>

namespace moesim::exec {
namespace {

constexpr double kCausal = 0.5;  // causal masking halves the score and value products

}  // namespace

LayerCostModel::LayerCostModel(const ModelShape& model, const ParallelConfig& parallel,
                               const TrainingWorkload& workload,
                               const std::vector<LayerRouting>& routing,
                               const hw::ComputeCostModel& cost)
    : model_(model), parallel_(parallel), workload_(workload), routing_(routing), cost_(cost) {
  size_t slots = 0;
  for (const LayerRouting& lr : routing_) {
    expert_cache_offset_.push_back(slots);
    slots += lr.samples.size() * parallel_.ep * 2;
  }
  expert_cache_.resize(slots);
  price_layer_kernels();
}

// The activation function between the FFN's GEMMs (SwiGLU reads gate and up,
// writes their product): memory-bound.
double LayerCostModel::ffn_activation_seconds(int64_t tokens, int64_t width) const {
  const int64_t w = width / parallel_.tp;
  const double elt = hw::bytes_per_element(workload_.tensor_dtype());
  return cost_.memory_bound_seconds(tokens * (model_.swiglu ? 3.0 : 2.0) * w * elt);
}

LayerCostModel::Fp8Casts LayerCostModel::fp8_casts(double rows, double inputs_per_row,
                                                   double outputs_per_row) const {
  if (workload_.compute_dtype != hw::DType::kFp8) return {};
  // Forward quantizes each GEMM's input; backward the output gradient for the
  // data-gradient GEMM, and both along the token dimension (cast and
  // transpose) for the weight-gradient GEMM.
  return {cost_.fp8_cast_seconds(rows * inputs_per_row),
          cost_.fp8_cast_seconds(rows * outputs_per_row),
          cost_.fp8_cast_seconds(rows * (inputs_per_row + outputs_per_row))};
}

LayerCostModel::FfnSeconds LayerCostModel::ffn_seconds(int64_t tokens, int64_t width) const {
  const hw::DType dt = workload_.compute_dtype;
  const int64_t w = width / parallel_.tp, up = model_.swiglu ? 2 * w : w;
  FfnSeconds f;
  f.activation = ffn_activation_seconds(tokens, width);
  f.gemms = cost_.gemm_seconds(tokens, up, model_.hidden, dt) +
            cost_.gemm_seconds(tokens, model_.hidden, w, dt);
  f.wgrad_gemms = cost_.wgrad_gemm_seconds(tokens, up, model_.hidden, dt) +
                  cost_.wgrad_gemm_seconds(tokens, model_.hidden, w, dt);
  // Up-projection: hidden in, up out; down-projection: w in, hidden out.
  f.casts = fp8_casts(static_cast<double>(tokens), static_cast<double>(model_.hidden + w),
                      static_cast<double>(up + model_.hidden));
  return f;
}

// The attention block on T tokens: multi-head latent attention (DeepSeek-V2
// and V3) or grouped-query (and multi-head) attention.
LayerCostModel::AttentionParts LayerCostModel::attention_parts(int64_t T) const {
  const hw::DType dt = workload_.compute_dtype;  // the linear layers' GEMMs
  const double elt = hw::bytes_per_element(workload_.tensor_dtype());
  const int64_t h = model_.hidden;
  const int t = parallel_.tp;
  const double causal = kCausal, seq = static_cast<double>(workload_.seq_len);
  AttentionParts a;
  if (model_.is_mla()) {
    const int64_t qk = model_.qk_nope_head_dim + model_.qk_rope_head_dim;
    // Down-projections to the latents, then up-projections to the heads
    // (without a query latent the query is projected from the hidden state).
    const int64_t q_latent = model_.q_lora_rank > 0 ? model_.q_lora_rank : h;
    // (out, in) of the query and key/value down- and up-projections, then
    // the output projection.
    const int64_t q_up_out = model_.heads * qk / t,
                  kv_up_out = model_.heads * (model_.qk_nope_head_dim + model_.v_head_dim) / t,
                  kv_down_out = model_.kv_lora_rank + model_.qk_rope_head_dim,
                  o_in = model_.heads * model_.v_head_dim / t;
    const double q_down =
        model_.q_lora_rank > 0 ? cost_.gemm_seconds(T, model_.q_lora_rank, h, dt) : 0;
    const double q_up = cost_.gemm_seconds(T, q_up_out, q_latent, dt);
    const double kv_down = cost_.gemm_seconds(T, kv_down_out, h, dt);
    const double kv_up = cost_.gemm_seconds(T, kv_up_out, model_.kv_lora_rank, dt);
    a.proj_in = q_down + q_up + kv_down + kv_up;
    a.proj_out = cost_.gemm_seconds(T, h, o_in, dt);
    a.wgrad_in =
        (model_.q_lora_rank > 0 ? cost_.wgrad_gemm_seconds(T, model_.q_lora_rank, h, dt) : 0) +
        cost_.wgrad_gemm_seconds(T, q_up_out, q_latent, dt) +
        cost_.wgrad_gemm_seconds(T, kv_down_out, h, dt) +
        cost_.wgrad_gemm_seconds(T, kv_up_out, model_.kv_lora_rank, dt);
    a.wgrad_out = cost_.wgrad_gemm_seconds(T, h, o_in, dt);
    const double q_out = static_cast<double>(model_.heads) * qk / t,
                 kv_a = static_cast<double>(model_.kv_lora_rank + model_.qk_rope_head_dim),
                 kv_b = static_cast<double>(model_.heads) *
                        (model_.qk_nope_head_dim + model_.v_head_dim) / t;
    // The query and latent down-projections read the same hidden states: one
    // cast serves both.
    a.in_inputs = static_cast<double>(h + model_.q_lora_rank + model_.kv_lora_rank);
    a.in_outputs = (model_.q_lora_rank > 0 ? model_.q_lora_rank + q_out : q_out) + kv_a + kv_b;
    a.out_inputs = static_cast<double>(model_.heads) * model_.v_head_dim / t;
    // After the up-projections, Megatron's fused MLA RoPE kernels
    // (multi_latent_attention.py fused_apply_mla_rope_for_q / _kv) read q and
    // kv (and the shared RoPE key) and write contiguous query, key and value;
    // their backward moves as many bytes.
    const double heads = static_cast<double>(model_.heads) / t, v = model_.v_head_dim,
                 nope = model_.qk_nope_head_dim, rope = model_.qk_rope_head_dim;
    a.mla_assembly =
        cost_.memory_bound_seconds(T * elt * (heads * (qk + (nope + v) + qk + qk + v) + rope));
    // mla_up_proj re-runs the up-projections (their inputs cast again under
    // FP8) and the assembly.
    const double up_inputs = static_cast<double>(q_latent + model_.kv_lora_rank);
    a.recompute =
        q_up + kv_up + fp8_casts(static_cast<double>(T), up_inputs, 0).forward + a.mla_assembly;
    a.core_flops = 2.0 * T * seq * causal * model_.heads / t * (qk + model_.v_head_dim);
    a.core_bytes = T * elt * model_.heads / t * (2.0 * qk + 2.0 * model_.v_head_dim);
    a.q_width = static_cast<double>(model_.heads) / t * qk;
    a.kv_width = static_cast<double>(model_.heads) / t * (qk + model_.v_head_dim);
    a.o_width = static_cast<double>(model_.heads) / t * model_.v_head_dim;
  } else {
    const int64_t hd = model_.head_dim;
    const int64_t qkv_out = (model_.heads + 2 * model_.kv_heads) * hd / t,
                  o_in = model_.heads * hd / t;
    a.proj_in = cost_.gemm_seconds(T, qkv_out, h, dt);
    a.proj_out = cost_.gemm_seconds(T, h, o_in, dt);
    a.wgrad_in = cost_.wgrad_gemm_seconds(T, qkv_out, h, dt);
    a.wgrad_out = cost_.wgrad_gemm_seconds(T, h, o_in, dt);
    a.in_inputs = static_cast<double>(h);
    a.in_outputs = static_cast<double>(model_.heads + 2 * model_.kv_heads) * hd / t;
    a.out_inputs = static_cast<double>(model_.heads) * hd / t;
    a.core_flops = 4.0 * T * seq * causal * model_.heads / t * hd;
    a.core_bytes = T * elt * hd / t * (2.0 * model_.heads + 2.0 * model_.kv_heads);
    // KV heads are replicated when there are fewer than tp of them.
    const int kv = model_.kv_heads > 0 ? model_.kv_heads : model_.heads;
    a.q_width = static_cast<double>(model_.heads) / t * hd;
    a.kv_width = 2.0 * (kv >= t ? static_cast<double>(kv) / t : 1.0) * hd;
    a.o_width = a.q_width;
  }
  return a;
}

double LayerCostModel::core_attention_seconds(double flops, double bytes, int64_t span, bool causal,
                                              hw::AttentionKernel::Pass pass) const {
  hw::AttentionKernel kernel{.flops = flops,
                             .bytes = bytes,
                             .head_dim = model_.attention_kernel_head_dim(),
                             .span = span,
                             .causal = causal,
                             .pass = pass,
                             .dtype = workload_.tensor_dtype()};
  const double full_seconds = cost_.attention_seconds(kernel);
  const int windowed = model_.windowed_layers;
  if (windowed == 0) return full_seconds;
  // A windowed layer attends window_mean_keys keys per query instead of
  // seq_len x kCausal, through a kernel whose query tiles reach window_span.
  kernel.flops =
      flops * model_.window_mean_keys / (static_cast<double>(workload_.seq_len) * kCausal);
  kernel.span = std::min(span, model_.window_span);
  const double windowed_seconds = cost_.attention_seconds(kernel);
  return ((model_.layers - windowed) * full_seconds + windowed * windowed_seconds) / model_.layers;
}

void LayerCostModel::price_layer_kernels() {
  const hw::DType tensor = workload_.tensor_dtype();  // all but the linear layers' GEMMs
  const double elt = hw::bytes_per_element(tensor);
  // Tokens of one micro-batch on this GPU's context-parallel rank.
  const int64_t T = workload_.seq_len / parallel_.cp * parallel_.micro_batch_size,
                h = model_.hidden;
  const int t = parallel_.tp;
  const int64_t T_norm = parallel_.sequence_parallel ? T / t : T;
  const double norm = 2 * cost_.memory_bound_seconds(2.0 * T_norm * h * elt);  // two norms
  const AttentionParts a = attention_parts(T);
  kernels_.attention_recompute = a.recompute;
  const double proj_in = a.proj_in, proj_out = a.proj_out, wgrad_in = a.wgrad_in,
               wgrad_out = a.wgrad_out, mla_assembly = a.mla_assembly, core_flops = a.core_flops,
               core_bytes = a.core_bytes;
  const Fp8Casts cast_in = fp8_casts(static_cast<double>(T), a.in_inputs, a.in_outputs),
                 cast_out = fp8_casts(static_cast<double>(T), a.out_inputs, static_cast<double>(h));
  const double proj = proj_in + proj_out;
  // The core attention runs in BF16 under FP8 training too, causal over the
  // sequence. Flash-attention backward does about 2.5x the forward's FLOPs
  // (it recomputes the scores): 5 matmuls against 2.
  using Pass = hw::AttentionKernel::Pass;
  const double core =
      core_attention_seconds(core_flops, core_bytes, workload_.seq_len, true, Pass::kForward);
  const double core_bwd = core_attention_seconds(2.5 * core_flops, 2.5 * core_bytes,
                                                 workload_.seq_len, true, Pass::kBackward);
  kernels_.attention_wgrad = wgrad_in + wgrad_out + cast_in.wgrad + cast_out.wgrad;
  kernels_.attention_fwd = proj + cast_in.forward + cast_out.forward + mla_assembly + core + norm;
  kernels_.attention_bwd = proj + cast_in.dgrad + cast_out.dgrad + kernels_.attention_wgrad +
                           mla_assembly + core_bwd + 2 * norm;
  kernels_.norm_recompute = norm;
  if (parallel_.cp > 1) {
    // Ring attention (context_parallel.py AttnFuncWithCPAndKVP2P): cp steps of
    // 1/cp of the core attention each; the partial results merged per step.
    const int cp = parallel_.cp;
    const double bf16 = 2, fp32 = 4;
    cp_kv_block_bytes_ = static_cast<double>(T) * a.kv_width * bf16;
    kernels_.attention_pre_fwd = norm + proj_in + cast_in.forward + mla_assembly;
    // Each step reads the rank's Q and one K/V block and writes a partial O.
    // With TE's load-balanced chunks every step but the first is a non-causal
    // block of the rank's queries (or half of them) against half its keys (or
    // all of them): a non-causal kernel reaching seq_len / (2 cp) keys.
    const int64_t step_span = std::max<int64_t>(1, workload_.seq_len / (2 * cp));
    kernels_.attention_ring_step_fwd =
        core_attention_seconds(core_flops / cp, core_bytes, step_span, false, Pass::kForward);
    kernels_.attention_post_fwd =
        proj_out + cast_out.forward +
        cost_.memory_bound_seconds(cp * T * a.o_width * (bf16 + 2 * fp32));
    kernels_.attention_ring_step_bwd =
        core_attention_seconds(2.5 * core_flops / cp, 2.5 * core_bytes, step_span, false,
                               Pass::kBackward) +
        cost_.memory_bound_seconds(T * (a.q_width * 2 * fp32 + a.kv_width * 3 * bf16));
    kernels_.attention_post_wgrad = wgrad_out + cast_out.wgrad;
    kernels_.attention_post_bwd = proj_out + cast_out.dgrad + kernels_.attention_post_wgrad;
    kernels_.attention_pre_wgrad = wgrad_in + cast_in.wgrad;
    kernels_.attention_pre_bwd =
        proj_in + cast_in.dgrad + kernels_.attention_pre_wgrad + mla_assembly + 2 * norm;
  }
  const FfnSeconds dense = ffn_seconds(T, model_.dense_ffn);
  kernels_.dense_recompute = dense.forward();
  kernels_.dense_fwd = dense.forward();
  kernels_.dense_bwd = dense.backward();
  kernels_.dense_wgrad = dense.wgrad();
  if (model_.shared_ffn > 0) {
    const FfnSeconds shared = ffn_seconds(T, model_.shared_ffn);
    kernels_.shared_fwd = shared.forward();
    kernels_.shared_bwd = shared.backward();
    kernels_.shared_wgrad = shared.wgrad();
  }
  const int64_t Tm = T / t;  // tokens entering the MoE block (sequence-parallel shard)
  const double copies = static_cast<double>(Tm) * model_.top_k;
  // The router gate and the output head stay BF16 under FP8 training.
  kernels_.router_fwd =
      cost_.gemm_seconds(Tm, model_.experts, h, tensor) +
      cost_.memory_bound_seconds(Tm * model_.experts * 4.0 * 2) +  // softmax + top-k
      cost_.memory_bound_seconds(2 * copies * h * elt);            // permute
  kernels_.router_bwd = 2 * kernels_.router_fwd;
  kernels_.unpermute_fwd = cost_.memory_bound_seconds((2 * copies + Tm) * h * elt);
  kernels_.unpermute_bwd = 2 * kernels_.unpermute_fwd;
  kernels_.embedding_fwd = cost_.memory_bound_seconds(2.0 * T_norm * h * elt);
  kernels_.embedding_bwd = 2 * kernels_.embedding_fwd;
  kernels_.head_wgrad = cost_.gemm_seconds(T, model_.vocab / t, h, tensor);
  kernels_.head_fwd = kernels_.head_wgrad +
                      cost_.memory_bound_seconds(T * static_cast<double>(model_.vocab) / t * 4 * 2);
  kernels_.head_bwd = 2 * kernels_.head_fwd;
  if (model_.mtp_layers > 0) {
    const hw::DType dt = workload_.compute_dtype;
    const double concat = cost_.memory_bound_seconds(2.0 * 2 * T_norm * h * elt);
    const double eh_proj = cost_.gemm_seconds(T, h / t, 2 * h, dt);
    const double eh_wgrad = cost_.wgrad_gemm_seconds(T, h / t, 2 * h, dt);
    const Fp8Casts casts = fp8_casts(static_cast<double>(T), 2.0 * h, static_cast<double>(h) / t);
    kernels_.mtp_entry_wgrad = eh_wgrad + casts.wgrad;
    kernels_.mtp_entry_fwd = kernels_.embedding_fwd + norm + concat + eh_proj + casts.forward;
    kernels_.mtp_entry_bwd = kernels_.embedding_bwd + 2 * norm + concat + eh_proj + casts.dgrad +
                             kernels_.mtp_entry_wgrad;
  }
}

const std::vector<double>& LayerCostModel::expert_seconds(int moe_index, int sample, int position,
                                                          bool backward) {
  std::vector<double>& cached =
      expert_cache_[expert_cache_offset_[moe_index] +
                    (static_cast<size_t>(sample) * parallel_.ep + position) * 2 +
                    (backward ? 1 : 0)];
  if (!cached.empty()) return cached;
  const RoutingSample& rs = routing_[moe_index].samples[sample];
  const int local = rs.local_experts;
  const int chunks = parallel_.a2a_overlap_chunks;
  const hw::DType dt = workload_.compute_dtype, tensor = workload_.tensor_dtype();
  const int64_t f = model_.expert_ffn / parallel_.etp;
  std::vector<double> per_chunk(3 * static_cast<size_t>(chunks));
  std::vector<int64_t> m(local);
  for (int c = 0; c < chunks; ++c) {
    for (int e = 0; e < local; ++e) {
      const int64_t total =
          rs.expert_tokens[static_cast<size_t>(position) * local + e] * parallel_.etp;
      // Chunk c gets an even share of each expert's tokens (the remainder to
      // the first chunks).
      m[e] = total / chunks + (c < total % chunks ? 1 : 0);
    }
    int64_t routed = 0;
    for (int64_t x : m) routed += x;
    const int64_t up = model_.swiglu ? 2 * f : f;
    const double act =
        cost_.memory_bound_seconds(routed * (up + f) * hw::bytes_per_element(tensor));
    const double gemms = cost_.grouped_gemm_seconds(m, up, model_.hidden, dt) +
                         cost_.grouped_gemm_seconds(m, model_.hidden, f, dt);
    const double wgrad_gemms = cost_.grouped_wgrad_gemm_seconds(m, up, model_.hidden, dt) +
                               cost_.grouped_wgrad_gemm_seconds(m, model_.hidden, f, dt);
    Fp8Casts casts = fp8_casts(static_cast<double>(routed), static_cast<double>(model_.hidden + f),
                               static_cast<double>(up + model_.hidden));
    // Tokens dispatched in FP8 reach the up-projection quantized already (its
    // weight gradient still casts them along the tokens).
    if (parallel_.dispatch_dtype == hw::DType::kFp8) {
      casts.forward -= fp8_casts(static_cast<double>(routed), model_.hidden, 0).forward;
    }
    const double wgrad = wgrad_gemms + casts.wgrad;
    per_chunk[c] = backward ? gemms + 2 * act + casts.dgrad + wgrad : gemms + act + casts.forward;
    per_chunk[chunks + c] = act;
    per_chunk[2 * chunks + c] = wgrad;
  }
  cached = std::move(per_chunk);
  return cached;
}

}  // namespace moesim::exec
