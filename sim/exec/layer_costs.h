#pragma once
// The layer cost model: how long each kernel of one transformer / MoE layer
// takes on one GPU for one micro-batch, from the compute cost model
// (hw::ComputeCostModel), under a parallel strategy. The step builder
// (step_builder.h) places these kernels in the task graph; this file only
// prices them.
//
// Backward kernels cost twice the forward GEMMs (data and weight gradients);
// flash-attention backward about 2.5x its forward (it recomputes the scores).
// FP8 training (workload dtype fp8, DeepSeek-V3's recipe) runs the linear
// layers' GEMMs in FP8 and adds the casts that feed them (hw fp8_cast_seconds);
// attention, norms, the router gate and the output head stay BF16.

#include <cstdint>
#include <vector>

#include "hwmodels/compute_cost.h"
#include "sim/exec/step_inputs.h"

namespace moesim::exec {

// Per-micro-batch kernel times of one layer on one GPU (seconds).
struct LayerKernelSeconds {
  // Projections, core attention, norms (and MLA's query/key assembly).
  double attention_fwd = 0, attention_bwd = 0;
  // Selective recompute (Megatron-Core's --recompute-modules layernorm mlp
  // moe_act mla_up_proj), re-run in backward: the two norms; MLA's up-
  // projections with their RoPE and query/key assembly (mla_up_proj
  // checkpoints qkv_up_proj_and_rope_apply; 0 for other attention); the
  // whole dense FFN (`mlp` checkpoints the dense MLP module; MoE layers'
  // shared experts are a separate module and are not re-run). The routed
  // experts' activation (moe_act) is in expert_seconds().
  double norm_recompute = 0, attention_recompute = 0;
  double dense_recompute = 0;
  double dense_fwd = 0, dense_bwd = 0;
  double shared_fwd = 0, shared_bwd = 0;
  double router_fwd = 0, router_bwd = 0;        // router GEMM, softmax/top-k, permutation
  double unpermute_fwd = 0, unpermute_bwd = 0;  // un-permute and weighted combine
  double embedding_fwd = 0, embedding_bwd = 0;
  double head_fwd = 0, head_bwd = 0;  // output projection + cross-entropy
  // An MTP module's entry (Megatron-Core MultiTokenPredictionLayer): the
  // shifted tokens' embedding, the two norms (enorm, hnorm), their
  // concatenation and eh_proj (2 x hidden -> hidden, column-parallel, in the
  // linear layers' dtype). Its transformer layer costs what a model layer
  // does; its output norm, head and loss what head_* cost, on the last stage
  // beside the model's (pipeline_schedule.h mtp_stage).
  double mtp_entry_fwd = 0, mtp_entry_bwd = 0, mtp_entry_wgrad = 0;
  // The weight-gradient GEMMs inside each backward above (priced by
  // ComputeCostModel::wgrad_gemm_seconds, plus under FP8 the casts of their
  // two operands along the tokens): what a backward that defers its weight gradients
  // (Megatron-Core's --delay-wgrad-compute, zero-bubble / DualPipe "W"
  // chunks) leaves for later. Router and embedding weight gradients stay in
  // their backward (a vocabulary scatter and a GEMM of width `experts`).
  double attention_wgrad = 0, dense_wgrad = 0, shared_wgrad = 0, head_wgrad = 0;
  // Context parallelism (cp > 1), the attention block as Transformer Engine's
  // ring attention runs it: the part before the ring (norms and the QKV
  // projections; backward: their data and weight gradients), one ring step's
  // core attention (1/cp of the rank's: causal load balancing gives every step
  // the same work), and the part after it (the output projection, and the
  // per-step merge of partial outputs: forward reads each step's BF16 output
  // and rewrites the FP32 sum, 10 bytes per output element per step; backward
  // adds each step's dQ into an FP32 accumulator and its dK, dV into the
  // travelling dKV, 8 bytes per Q and 6 per K/V element). *_wgrad: the weight
  // gradients inside pre_bwd and post_bwd.
  double attention_pre_fwd = 0, attention_ring_step_fwd = 0, attention_post_fwd = 0;
  double attention_pre_bwd = 0, attention_ring_step_bwd = 0, attention_post_bwd = 0;
  double attention_pre_wgrad = 0, attention_post_wgrad = 0;
};

class LayerCostModel {
 public:
  // `routing`: the step's routing per MoE layer (sizes the expert GEMMs).
  LayerCostModel(const ModelShape& model, const ParallelConfig& parallel,
                 const TrainingWorkload& workload, const std::vector<LayerRouting>& routing,
                 const hw::ComputeCostModel& cost);

  const LayerKernelSeconds& kernels() const { return kernels_; }
  // Context parallelism: the bytes of one key/value block a ring step passes
  // to the next rank (BF16 K and V of the rank's seq_len / cp tokens per
  // micro-batch; a dK, dV block in backward is as large).
  double cp_kv_block_bytes() const { return cp_kv_block_bytes_; }

  // Routed-expert time per overlap chunk for the EP rank at `ep_position`,
  // for routing sample `sample` of MoE layer `moe_index`: two grouped GEMMs
  // (gate+up, then down) sized by the tokens each local expert received, and
  // the activation between them. With expert tensor parallelism each GPU
  // holds 1/etp of every local expert and processes the tokens gathered from
  // its etp peers. Entries [chunks, 2 chunks) hold each chunk's forward
  // activation alone: what selective recompute re-runs; entries [2 chunks,
  // 3 chunks) each chunk's weight-gradient GEMMs (part of its backward,
  // priced by ComputeCostModel::grouped_wgrad_gemm_seconds, plus their FP8
  // casts). Computed once per (layer, sample, position, direction).
  const std::vector<double>& expert_seconds(int moe_index, int sample, int ep_position,
                                            bool backward);

 private:
  // FP8 casts around the GEMMs of a linear layer over `rows` tokens, given
  // the GEMM inputs and outputs per token (zero unless the dtype is FP8).
  struct Fp8Casts {
    double forward = 0, dgrad = 0, wgrad = 0;
  };
  Fp8Casts fp8_casts(double rows, double inputs_per_row, double outputs_per_row) const;
  // One dense or shared-expert FFN on `tokens`: its GEMMs, activation and
  // casts; backward runs the data-gradient GEMMs (as costly as the forward
  // ones), the weight-gradient GEMMs (ComputeCostModel::wgrad_gemm_seconds)
  // and the activation twice.
  struct FfnSeconds {
    double gemms = 0, wgrad_gemms = 0, activation = 0;
    Fp8Casts casts;
    double forward() const { return gemms + activation + casts.forward; }
    double wgrad() const { return wgrad_gemms + casts.wgrad; }
    double backward() const {
      return gemms + wgrad_gemms + 2 * activation + casts.dgrad + casts.wgrad;
    }
  };

  // The attention block of one micro-batch on `tokens` tokens, by part: the
  // projections' GEMMs (in: before the core attention, out: after) and their
  // weight gradients, the GEMM inputs and outputs per token (for the FP8
  // casts), MLA's RoPE assembly, the core attention's FLOPs and bytes, and
  // the per-token widths of query, key/value and output on this GPU.
  struct AttentionParts {
    double proj_in = 0, proj_out = 0, wgrad_in = 0, wgrad_out = 0;
    double in_inputs = 0, in_outputs = 0, out_inputs = 0;
    double mla_assembly = 0;  // one way
    double recompute = 0;     // what mla_up_proj re-runs (0 for GQA)
    double core_flops = 0, core_bytes = 0;
    double q_width = 0, kv_width = 0, o_width = 0;  // elements
  };
  AttentionParts attention_parts(int64_t tokens) const;
  // The core attention of one layer (FLOPs and bytes as attention_parts
  // counts them for full causal attention over the sequence), averaged over
  // the model's full and windowed layers, each as its own kernel. `span`:
  // the keys a query reaches on a full layer.
  double core_attention_seconds(double flops, double bytes, int64_t span, bool causal,
                                hw::AttentionKernel::Pass pass) const;

  void price_layer_kernels();
  FfnSeconds ffn_seconds(int64_t tokens, int64_t width) const;
  double ffn_activation_seconds(int64_t tokens, int64_t width) const;

  const ModelShape& model_;
  const ParallelConfig& parallel_;
  const TrainingWorkload& workload_;
  const std::vector<LayerRouting>& routing_;
  const hw::ComputeCostModel& cost_;
  LayerKernelSeconds kernels_;
  double cp_kv_block_bytes_ = 0;
  // expert_seconds() results: [expert_cache_offset_[moe layer] + (sample * ep
  // + position) * 2 + backward]; empty until first computed.
  std::vector<std::vector<double>> expert_cache_;
  std::vector<size_t> expert_cache_offset_;
};

}  // namespace moesim::exec
