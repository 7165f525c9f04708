#pragma once
// Memory per GPU for a training step, counted the way Megatron-Core (with
// Transformer Engine) keeps it: weights, gradients and optimizer states (per
// ZeRO stage); the tensors each layer saves for backward, for every
// (micro-batch, model chunk) forward pass the pipeline schedule holds at its
// peak; the routed token copies' tensors on the expert side; the loss's logits
// on the last stage; and a reserve for the CUDA context, communication buffers
// and allocator slack (options.reserved_memory_gib). Capacity is the HBM the
// device exposes (hw::GpuSpec::hbm_bytes).
//
// Static state per parameter (mixed precision with Adam, Megatron-LM's
// distributed optimizer): BF16 weight 2, FP32 gradient 4, FP32 master weight +
// two moments 12. ZeRO 1 shards the 12, ZeRO 2 also the gradients, ZeRO 3 also
// the weights, over the data-parallel group (expert parameters over the
// expert-data-parallel group).
//
// Saved activations, tensor by tensor, from reading Megatron-Core
// (github.com/NVIDIA/Megatron-LM, megatron/core/...) and Transformer Engine:
//  - Attention (models/gpt/gpt_layer_specs.py, TE spec): standard attention
//    fuses the input norm into linear_qkv (TELayerNormColumnParallelLinear),
//    which keeps the norm's input (the residual) and output; MLA
//    (transformer/multi_latent_attention.py) has a separate input norm whose
//    output both down-projections keep, then the q/kv latents and their norm
//    outputs (the up-projections are LayerNorm-fused), and Q, K, V after
//    up-projection and RoPE. Fused attention keeps Q, K, V, its output O and
//    FP32 softmax statistics (one per head and token); the output projection
//    keeps O too. The attention block's residual output is kept by the
//    pre-MLP norm.
//  - MoE layer (transformer/moe/): the pre-MLP norm's output is kept by the
//    router (BF16; router_gating_linear in moe_utils.py) and, as the same
//    tensor even under FP8 (shared_experts.py: save_original_input), by the
//    shared experts' fc1; the router keeps FP32 scores per expert. Shared
//    experts run without --moe-shared-expert-overlap (as in the ModelZoo
//    DeepSeek-V3 and Qwen3 configs), so fc1 keeps the sequence-parallel shard. Fused permutation
//    (--moe-permute-fusion, TE moe_permute_with_probs) keeps an int32 row-id
//    map of [tokens, 2 x experts + 1] (transformer_engine/pytorch/triton/
//    permutation.py make_row_id_map), on the source tokens for the all-to-all
//    dispatcher and on the received tokens for DeepEP (flex), whose local
//    permutation runs after dispatch (token_dispatcher.py). Grouped GEMM
//    experts (TEGroupedMLP, experts.py) keep per routed copy: fc1's input,
//    fc1's output (kept by the weighted SwiGLU, fusions/fused_bias_swiglu.py),
//    the activation's output (fc2's input) and the FP32 routing probability
//    the activation multiplies in. Because the probabilities are applied in
//    the activation, unpermute gets none and keeps no expert output (TE
//    _moe_unpermute_mask_map keeps only the map without merging_probs).
//    Without permute fusion, permute keeps int64 indices instead of the map
//    (tens of bytes per token either way); without grouped GEMM
//    (SequentialMLP) the same tensors are kept but moe_act cannot be
//    recomputed (transformer_config.py rejects it). moesim models the fused,
//    grouped path the Megatron-MoE-ModelZoo recipes run.
//  - Dense FFN (and shared experts): fc1 (LayerNorm-fused for the dense FFN)
//    keeps its input, the activation keeps fc1's output, fc2 keeps the
//    activation's output.
//  - GEMM inputs are stored in the compute dtype: in BF16 a GEMM shares the
//    tensor its producer keeps; in FP8 each TE GEMM keeps its own quantized
//    copy (1 byte), except where attention or the router keeps the BF16
//    tensor anyway: there Megatron-Core sets TE's save_original_input
//    (transformer/attention.py for linear_proj, moe/shared_experts.py for the
//    shared experts' fc1; FP8 recipes other than delayed scaling).
//  - Left out as negligible: norm statistics (4 bytes per token and norm),
//    attention RNG state, MLA's RoPE key under mla_up_proj recompute (128
//    bytes per token), aux-loss intermediates.
//
// Recompute, as Megatron-Core's --recompute-granularity:
//  - selective: --recompute-modules layernorm mlp moe_act mla_up_proj
//    (transformer/transformer_layer.py, the MoE README's recommendation plus
//    the dense `mlp`): drops the outputs of separate norms (MLA's input norm,
//    the MoE pre-MLP norm; norms fused into a linear are not separate modules
//    and stay), everything inside dense FFNs but their input, routed experts'
//    activation outputs, and MLA's up-projected Q, K, V. Shared experts keep
//    theirs (that is the separate `shared_experts` module).
//  - selective_moe: `moe` in place of `moe_act` (moe/moe_layer.py checkpoints
//    the whole MoE forward): an MoE layer keeps nothing but its input, the
//    pre-MLP norm's output, which `layernorm` drops too; the layer being
//    recomputed in backward holds its MoE tensors and routed copies for the
//    moment.
//  - full: each layer keeps its input; the layer being recomputed in backward
//    holds its full set (and its routed copies) for the moment.
//
// Context parallelism (parallel.cp): every tensor above is per token of the
// micro-batch's seq_len / cp tokens a rank holds (Transformer Engine's ring
// attention saves Q, the rank's own K and V, O and the softmax statistics,
// context_parallel.py AttnFuncWithCPAndKVP2P), so activations, routed copies
// and logits fall by cp; while a layer's attention runs, the ring's buffers
// come on top (cp_ring_buffer_bytes). Dense parameters' optimizer states are
// sharded over dp x cp ranks (the distributed optimizer's data-parallel group
// with context parallelism).
//
// Activation offload (parallel.offload_activations, Megatron-Core's fine-
// grained offloading): a listed module's saved tensors leave the GPU once
// copied to the host; one layer's offloaded tensors count as on the GPU at any
// moment (in flight out, or reloaded for backward). Which module saves which
// tensor is noted where each is counted below.
//
// Pipeline: the walk follows schedule_order() (Megatron-Core's 1F1B and
// interleaved schedules, pipeline_parallel/schedules.py, with one more
// warm-up forward under moe_a2a_overlap "1f1b"; DualPipe's): a forward pass
// adds its chunk's saved tensors, its backward frees them (a zero-bubble
// backward's only at its weight-gradient pass); the peak is taken over the
// walk. Interleaved stage s holds 2(pp - s - 1) + (v - 1) pp + 1 passes at
// the start of its steady state (num_warmup_microbatches + 1). DualPipe
// ranks hold two stages, so twice the parameters (DualPipe README: 2x
// parameters, pp + 1 activations per device).
//
// Logits (last stage, one micro-batch at a time: the loss chunk's backward
// follows its forward at once): the output layer's BF16 logits [tokens,
// vocab/tp] stay alive while the loss runs, next to the FP32 working copy the
// vocab-parallel cross entropy turns into the softmax and then, in place,
// into the gradient. The fused path (--cross-entropy-loss-fusion, fusions/
// fused_cross_entropy.py) and the unfused one (tensor_parallel/
// cross_entropy.py) keep the same tensors, 6 bytes per logit, and neither
// holds FP32 logits and an FP32 gradient at once; the fusion saves kernels,
// not memory (models/common/language_module/language_module.py picks the
// path). The report says which path a scenario names.

#include <limits>
#include <vector>

#include "sim/exec/step_inputs.h"

namespace moesim::exec {

struct MemoryBreakdown {
  int stage = 0;
  double weights_bytes = 0;
  double gradients_bytes = 0;
  double optimizer_bytes = 0;
  // At this stage's peak moment:
  double activations_bytes = 0;    // tensors saved for backward, routed copies apart
  double routed_tokens_bytes = 0;  // routed copies' tensors on the expert side
  double logits_bytes = 0;         // loss logits (last stage)
  double reserved_bytes = 0;
  int inflight_microbatches = 0;  // forward passes (micro-batch x model chunk) held
  // Pinned host memory the offloaded activations take at their peak (not
  // part of total_bytes: it is not on the GPU).
  double host_offload_bytes = 0;
  double total_bytes() const {
    return weights_bytes + gradients_bytes + optimizer_bytes + activations_bytes +
           routed_tokens_bytes + logits_bytes + reserved_bytes;
  }
};

struct MemoryEstimate {
  std::vector<MemoryBreakdown> per_stage;  // every GPU of a stage has the same profile
  double peak_bytes = 0;
  int peak_stage = 0;
  double capacity_bytes = 0;
  bool cross_entropy_loss_fusion = true;  // the loss path the logits are counted for
  // Activation offload: the most pinned host memory a GPU's offloaded
  // activations take, and the node's host memory per GPU (set by the caller;
  // unbounded by default). A node's GPUs share its host memory, so each may
  // take its share; a stage over it does not fit.
  bool offloads_activations = false;
  double host_offload_peak_bytes = 0;
  double host_capacity_bytes = std::numeric_limits<double>::infinity();
  bool fits_hbm() const { return peak_bytes <= capacity_bytes; }
  bool fits_host() const { return host_offload_peak_bytes <= host_capacity_bytes; }
  bool fits() const { return fits_hbm() && fits_host(); }
};

// Token copies a GPU's experts receive for one MoE layer and micro-batch:
// the mean over GPUs, and the most any GPU receives. A GPU holds the mean
// for most of its layers in flight and the worst case for one (the hot
// experts of different layers rarely share a GPU); imbalance costs memory.
struct RoutedCopies {
  double mean = 0, max = 0;
};

// REQUIRES: the strategy passed check_strategy (at least one micro-batch per
// replica; interleaving needs micro-batches % pp == 0).
MemoryEstimate estimate_memory(const ModelShape& model, const ParallelConfig& parallel,
                               const TrainingWorkload& workload, RoutedCopies routed_per_gpu,
                               double capacity_bytes, double reserved_bytes);

// Bytes one GPU keeps for backward for one layer of one micro-batch under
// parallel.recompute: per token of the micro-batch (tensor- and sequence-
// parallel shares already taken) and per routed copy its experts receive
// (before the expert-tensor-parallel all-gather multiplies copies by etp).
// `all_*` is the same with nothing recomputed.
struct LayerSavedBytes {
  double per_token = 0, per_routed_copy = 0;
  double all_per_token = 0, all_per_routed_copy = 0;
  // The part of per_token / per_routed_copy that parallel.offload_activations
  // moves to host memory: copied out after the attention block (attn_norm,
  // qkv_linear, core_attn, attn_proj) or after the MLP block (mlp_norm,
  // expert_fc1, moe_act).
  double offloaded_attention_per_token = 0, offloaded_mlp_per_token = 0;
  double offloaded_per_routed_copy = 0;
  double offloaded_per_token() const {
    return offloaded_attention_per_token + offloaded_mlp_per_token;
  }
};
LayerSavedBytes layer_saved_bytes(const ModelShape& model, const ParallelConfig& parallel,
                                  hw::DType compute_dtype, int layer);

// Context parallelism (cp > 1; 0 otherwise): the buffers Transformer Engine's
// ring attention holds while one layer's attention runs (AttnFuncWithCPAndKVP2P
// .forward keeps every step's received key/value block, per-step output and
// softmax statistics until it merges them): cp - 1 received KV blocks, cp BF16
// partial outputs and the FP32 output, for one micro-batch's tokens on this
// rank.
double cp_ring_buffer_bytes(const ModelShape& model, const ParallelConfig& parallel,
                            const TrainingWorkload& workload);

// Parameters (elements) one GPU holds of transformer layer `layer` before
// any ZeRO sharding: dense ones (attention, dense FFN or shared experts and
// router, split over tp) and routed experts (its EP rank's slots, split over
// etp). The unit ZeRO-2/3 gather and reduce, and the data-parallel reduction's
// buckets.
struct LayerParams {
  double dense = 0, experts = 0;
};
LayerParams layer_params(const ModelShape& model, const ParallelConfig& parallel, int layer);

// Parameters (elements) one GPU of `stage` holds before any ZeRO sharding.
struct LocalParams {
  double dense = 0;    // attention, dense FFN, shared experts, routers, embeddings
  double experts = 0;  // routed experts
  // The most one layer holds (dense and experts): a ZeRO-2/3 unit, gathered
  // and reduced whole.
  double largest_layer = 0;
};
LocalParams local_params(const ModelShape& model, const ParallelConfig& parallel, int stage);

}  // namespace moesim::exec
