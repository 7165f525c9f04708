#pragma once
// What the execution model needs to know about a training step, resolved from
// the scenario: the model's layer shapes, the parallel strategy, the batch,
// and per-layer routing outcomes. Plain data; validation happens in
// the scenario layer (sim/scenario), and these structs are what tests build by hand.

#include <cstdint>
#include <string>
#include <vector>

#include "hwmodels/dtype.h"
#include "sim/collectives/collective.h"

namespace moesim::exec {

// The shapes of one transformer block stack, as the cost and memory models
// see them. Parameter counts come from the model catalog.
struct ModelShape {
  std::string name;
  // Transformer layers: the model's, then (training) its MTP modules' ones
  // (workloads::MoeModelConfig::mtp_layers), which are the last mtp_layers.
  int layers = 0;
  int mtp_layers = 0;
  int64_t hidden = 0;
  int heads = 0;
  int kv_heads = 0;
  int64_t head_dim = 0;
  // Multi-head latent attention (DeepSeek-V2/V3); 0 = standard attention.
  int64_t q_lora_rank = 0, kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0,
          v_head_dim = 0;
  int64_t dense_ffn = 0;   // FFN width of dense layers
  int64_t expert_ffn = 0;  // FFN width of one routed expert
  int64_t shared_ffn = 0;  // total FFN width of the shared experts (0: none)
  int experts = 0;
  int expert_slots = 0;  // experts + redundant replicas (EPLB); 0 = experts
  int top_k = 0;
  bool swiglu = true;
  int64_t vocab = 0;
  std::vector<bool> moe_layer;  // per layer
  // Windowed attention (gpt-oss's sliding, Llama 4's chunked layers) at the
  // scenario's sequence length: how many layers attend through a window, the
  // most keys a query reaches there, and how many it attends to on average
  // (MoeModelConfig::mean_attended_tokens). 0 layers: every layer is full.
  int windowed_layers = 0;
  int64_t window_span = 0;
  double window_mean_keys = 0;
  // The same windows layer by layer, for serving, which prices every query's
  // own reach: per layer, true where attention goes through the window
  // (empty: no window; windowed_layers counts its true entries); the
  // window's kind and length.
  std::vector<bool> windowed_layer;
  bool window_chunked = false;  // Llama 4's chunks; otherwise gpt-oss's sliding window
  int64_t window_tokens = 0;

  // Parameter counts (elements).
  double attention_params_per_layer = 0;  // incl. norms
  double dense_ffn_params = 0;            // one dense FFN
  double expert_params = 0;               // one routed expert
  double shared_expert_params = 0;        // all shared experts of one layer
  double router_params = 0;               // one layer
  double embedding_params = 0;            // input embedding
  double output_params = 0;               // output head (0 if tied)
  // Of each MTP module, besides its transformer layer
  // (workloads::MoeModelConfig::mtp_module_params).
  double mtp_module_params = 0;
  double total_params = 0, active_params = 0;
  // Model FLOPs of a forward pass per token at the scenario's sequence length
  // (matmuls incl. attention scores; the MFU numerator is 3x this).
  double forward_flops_per_token = 0;

  bool is_mla() const { return kv_lora_rank > 0; }
  int model_layers() const { return layers - mtp_layers; }
  bool is_mtp_layer(int layer) const { return layer >= model_layers(); }
  // The head dim whose measured curves price this model's attention kernels
  // (ComputeCostModel::attention_seconds). MLA (q.k 192, v 128) reads v's:
  // cuDNN's measured DeepSeek-V3 forward (Megatron-Core MoE report Table 9:
  // 553 and 638 TFLOPS at 4,096 and 16,384) sits within 5% of
  // FlashAttention-3's causal head-dim-128 curve (579, 616).
  int64_t attention_kernel_head_dim() const { return is_mla() ? v_head_dim : head_dim; }
  int slots() const { return expert_slots > 0 ? expert_slots : experts; }
  bool has_window() const { return !windowed_layer.empty() && window_tokens > 0; }
  // Keys the queries at positions [first, first + count) attend to together
  // on a windowed layer, counted continuously (a query at x reaches min(x,
  // window) keys sliding, x mod window chunked), so that a window holding
  // them all gives full attention's count(first + count / 2).
  // REQUIRES has_window(), first >= 0, count >= 0.
  double windowed_keys(int64_t first, int64_t count) const;
  // Keys already cached that the token at position `position` reads on a
  // windowed layer: min(position, window) sliding, position mod window
  // chunked. REQUIRES has_window(), position >= 0.
  int64_t windowed_cached_keys(int64_t position) const;
  // Paged KV blocks (block_tokens tokens of every layer) a sequence holds
  // while the positions [from, to) are computed, as vLLM's KV-cache managers
  // keep them (v1/core/single_type_kv_cache_manager.py): a full layer the
  // blocks of [0, to); a sliding layer only those from the window of the
  // first new token (from - window + 1) on, a chunked one those from its
  // chunk's start, the blocks before freed. Layer-blocks summed and rounded up
  // to whole blocks; without a window, ceil(to / block_tokens).
  // REQUIRES 0 <= from <= to, block_tokens >= 1.
  int64_t kv_blocks(int64_t from, int64_t to, int64_t block_tokens) const;
  // A bound on kv_blocks(from, t) over every t <= to with t - from <= step:
  // the most a sequence computed `step` tokens at a time up to `to` holds.
  // REQUIRES to >= 0, step >= 1, block_tokens >= 1.
  int64_t max_kv_blocks(int64_t to, int64_t step, int64_t block_tokens) const;
  // Tokens whose cache a sequence of `context` tokens keeps, averaged over
  // the layers: all of them on a full layer, its window's on a windowed one
  // (min(context, window) sliding, those of the last chunk chunked): what a
  // swap or a prefill-to-decode transfer moves. `context` without a window.
  double kv_cached_tokens(int64_t context) const;
  // Whole blocks of every layer for the blocks one full and one windowed
  // layer hold (layer-blocks summed, rounded up).
  int64_t whole_blocks(int64_t full_layer_blocks, int64_t windowed_layer_blocks) const;
  int moe_layers() const;
};

enum class PipelineSchedule { kOneFOneB, kInterleaved };
// Megatron-Core's --recompute-granularity, with the selective modules moesim
// models (transformer/transformer_config.py recompute_modules):
//  - kSelective: layernorm mlp moe_act mla_up_proj (output-discarding
//    checkpoints of the norms, the dense MLP, the routed experts' activation
//    and MLA's up-projections);
//  - kSelectiveMoe: layernorm mlp moe mla_up_proj: the whole MoE layer
//    (router, dispatch, experts, combine; moe/moe_layer.py checkpoints
//    custom_forward) is re-run in backward from its input, all-to-alls
//    included, as the ModelZoo's long-context Qwen3 runs do;
//  - kFull: each layer re-run from its input.
enum class Recompute { kNone, kSelective, kSelectiveMoe, kFull };
constexpr bool selective_recompute(Recompute r) {
  return r == Recompute::kSelective || r == Recompute::kSelectiveMoe;
}

// Megatron-Core's fine-grained activation offloading (--fine-grained-activation-
// offloading --offload-modules, pipeline_parallel/fine_grained_activation_
// offload.py): each listed module's saved tensors go to pinned host memory on
// a device-to-host stream once the module's forward ends, and come back on a
// host-to-device stream one module ahead of its backward. Names as
// Megatron's; attn_norm applies only where the input norm is a separate
// module (MLA), as Megatron skips an IdentityOp norm.
enum class OffloadModule : uint8_t {
  kAttnNorm,
  kQkvLinear,
  kCoreAttn,
  kAttnProj,
  kMlpNorm,
  kExpertFc1,
  kMoeAct,
  kCount
};

// How expert-parallel all-to-alls hide behind another micro-batch's compute.
//  - kNone: each pass runs alone; only the shared experts (and the optional
//    a2a_overlap_chunks) overlap a layer's own dispatch.
//  - kOneFOneB: Megatron-Core's --overlap-moe-expert-parallel-comm with
//    --delay-wgrad-compute (pipeline_parallel/combined_1f1b.py): every
//    steady-state (forward, backward) pair of the 1F1B / interleaved schedule
//    runs as one combined step, forward layer i beside backward layer L-1-i,
//    each one's dispatch and combine beside the other's compute; one extra
//    warm-up forward makes each pair independent.
//  - kDualPipe: DeepSeek's DualPipe (deepseek-ai/DualPipe dualpipe/dualpipe.py):
//    micro-batches enter from both ends of the pipeline, rank r holds stages r
//    and pp-1-r (twice the parameters), and the steady state runs overlapped
//    forward & backward pairs of the two directions, with zero-bubble
//    backward (input gradients first, weight gradients later) around them.
enum class MoeA2aOverlap { kNone, kOneFOneB, kDualPipe };

// Adam's state per parameter, as Megatron-Core's distributed optimizer keeps
// it (core/optimizer/optimizer_config.py, with Transformer Engine's FusedAdam).
// By default an FP32 master weight and two FP32 moments. With
// --use-precision-aware-optimizer the moments may be kept in 16 bits
// (--exp-avg-dtype / --exp-avg-sq-dtype; DeepSeek-V3 keeps both in BF16,
// report 3.3.3), and, in BF16 training, the master weight as the 16 bits its
// BF16 copy lacks (store_param_remainders, default on; distrib_optimizer.py
// allocates it as int16; FP8 recipes keep the full FP32 master).
struct AdamPrecision {
  bool precision_aware = false;
  hw::DType exp_avg = hw::DType::kFp32;
  hw::DType exp_avg_sq = hw::DType::kFp32;
  bool store_param_remainders = true;

  double master_bytes(hw::DType compute) const {
    return precision_aware && store_param_remainders && compute == hw::DType::kBf16 ? 2 : 4;
  }
  // Master weight and both moments.
  double state_bytes(hw::DType compute) const {
    return master_bytes(compute) + hw::bytes_per_element(exp_avg) +
           hw::bytes_per_element(exp_avg_sq);
  }
  // What one Adam step moves per parameter: it reads the FP32 gradient, the
  // state (and the BF16 weight that completes a remainder) and writes the
  // state and the BF16 weight. Default precision: 4 + 12 + 12 + 2 = 30 bytes.
  double step_bytes(hw::DType compute) const {
    const double remainder_weight = master_bytes(compute) < 4 ? 2 : 0;
    return 4 + 2 * state_bytes(compute) + remainder_weight + 2;
  }
};

// What one virtual pipeline stage holds under parallel.pipeline_layout
// (Megatron-Core's --pipeline-model-parallel-layout): transformer layers of
// the model ("t"), MTP modules ("m"), the embedding ("E"), the loss ("L").
struct LayoutStage {
  int model_layers = 0, mtp_layers = 0;
  bool embedding = false, loss = false;
  bool operator==(const LayoutStage&) const = default;
};

struct ParallelConfig {
  int dp = 1, tp = 1, pp = 1, ep = 1, etp = 1;
  // Context parallelism (Megatron-Core --context-parallel-size with Transformer
  // Engine's "p2p" ring attention): each micro-batch's sequence is split over
  // cp ranks (2 cp chunks, rank i holding chunks i and 2cp-1-i so that causal
  // work balances); attention passes key/value blocks around the ring.
  int cp = 1;
  bool sequence_parallel = false;
  int zero_stage = 1;  // 1 = distributed optimizer (optimizer states sharded)
  int micro_batch_size = 1;
  PipelineSchedule schedule = PipelineSchedule::kOneFOneB;
  int virtual_stages = 1;
  bool embedding_and_loss_as_layers = false;  // in the pipeline split (Megatron-LM)
  // parallel.pipeline_layout: each virtual stage's contents, in virtual-stage
  // order (stage v = chunk x pp + pipeline rank), as written and expanded;
  // empty: layers split evenly (split_layers), MTP modules with the loss.
  std::string layout_text;
  std::vector<LayoutStage> layout;
  Recompute recompute = Recompute::kNone;
  bool pp_outer_of_dp = true;  // rank order tp-ep-dp-pp (pp slowest); false: tp-ep-pp-dp
  bool overlap_grad_reduce = true;
  bool overlap_param_gather = true;
  int a2a_overlap_chunks = 1;
  coll::AllToAllAlgorithm a2a_algo = coll::AllToAllAlgorithm::kHierarchical;
  hw::DType dispatch_dtype = hw::DType::kBf16;  // fp8 dispatch as in DeepSeek-V3
  // Megatron-Core's --cross-entropy-loss-fusion (ModelParallelConfig): which
  // vocab-parallel cross entropy the loss runs (see memory_model.h).
  bool cross_entropy_loss_fusion = true;
  MoeA2aOverlap moe_a2a_overlap = MoeA2aOverlap::kNone;
  // SMs the expert-parallel all-to-all kernels occupy while they run (DeepEP
  // Buffer.num_sms = 20, deep_ep/buffers/legacy.py; Megatron-Core's
  // moe_flex_dispatcher_num_sms default 20, moe/token_dispatcher.py): compute
  // overlapping them gets the GPU's other SMs (see TaskGraph::set_comm_sms).
  // Modelled only when moe_a2a_overlap is not kNone.
  int a2a_comm_sms = 20;
  // Modules whose activations are offloaded: bit i set for OffloadModule i.
  uint8_t offload_modules = 0;
  AdamPrecision adam;

  int gpus() const { return dp * tp * cp * pp; }
  // Ranks holding the same dense parameters: data x context parallel (Megatron-
  // Core's data-parallel group with_context_parallel=True, over which dense
  // gradients are reduced and the distributed optimizer shards).
  int dense_dp() const { return dp * cp; }
  int expert_dp() const { return dp * tp * cp / (ep * etp); }
  bool offloads(OffloadModule m) const { return (offload_modules >> static_cast<int>(m)) & 1; }
};

// Costs of the training framework's runtime that no kernel or transfer
// accounts for. Zero means a perfect runtime (the hardware model alone).
struct FrameworkOverheads {
  // GPU idle time at the start of every forward and backward pass of one
  // model chunk on one micro-batch when pp > 1: the pipeline schedule's host
  // work between passes (posting and waiting on the stage-to-stage transfers,
  // input and loss bookkeeping, starting autograd), during which the GPU has
  // nothing queued.
  double pipeline_pass_s = 0;
};

struct TrainingWorkload {
  int64_t seq_len = 4096;
  int64_t global_batch = 1;  // sequences per step
  int steps = 1;
  hw::DType compute_dtype = hw::DType::kBf16;

  // The dtype tensors are kept and moved in. FP8 training (DeepSeek-V3
  // report 3.3) runs only the linear layers' GEMMs in FP8, quantizing their
  // operands on the fly; activations, gradients, attention, norms, the
  // router gate and the output head stay BF16.
  hw::DType tensor_dtype() const {
    return compute_dtype == hw::DType::kFp8 ? hw::DType::kBf16 : compute_dtype;
  }

  int64_t microbatches(const ParallelConfig& p) const {
    return global_batch / (static_cast<int64_t>(p.dp) * p.micro_batch_size);
  }
};

// Routing outcome of one MoE layer for one expert-parallel group and one
// micro-batch, after gating: who sends how many token copies to whom, and what
// each rank's local experts receive.
struct RoutingSample {
  int ep = 0;
  int local_experts = 0;
  std::vector<int64_t> pair_tokens;  // ep x ep, [src * ep + dst], token copies
  // Node-deduplicated dispatch (DeepEP's normal kernels): the tokens a source
  // sends each rank once (rank_tokens), and each node once, counted at the
  // token's first destination rank on that node (node_tokens; within the
  // source's node equal to rank_tokens). Empty: not counted.
  std::vector<int64_t> rank_tokens;
  std::vector<int64_t> node_tokens;
  std::vector<int64_t> expert_tokens;  // ep x local_experts, [rank * local + e]
  int64_t tokens_in = 0;               // tokens entering the layer (all source ranks)
  int64_t routed = 0;                  // token copies delivered to experts
  int64_t dropped = 0;                 // token copies dropped by capacity
};

// Several samples per MoE layer; micro-batch b of EP group g uses sample
// (b + g) mod samples.size().
struct LayerRouting {
  int layer = 0;  // model layer index
  std::vector<RoutingSample> samples;
};

}  // namespace moesim::exec
