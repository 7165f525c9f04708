#include "sim/exec/memory_model.h"

#include <algorithm>

#include "sim/exec/pipeline_schedule.h"

namespace moesim::exec {

int ModelShape::moe_layers() const {
  return static_cast<int>(std::count(moe_layer.begin(), moe_layer.end(), true));
}

LocalParams local_params(const ModelShape& m, const ParallelConfig& p, int stage) {
  const auto ranges =
      split_layers(m.layers, p.pp * p.virtual_stages, p.embedding_and_loss_as_layers);
  LocalParams lp;
  for (int chunk = 0; chunk < p.virtual_stages; ++chunk) {
    const int vstage = chunk * p.pp + stage;
    for (int l = ranges[vstage].begin; l < ranges[vstage].end; ++l) {
      lp.dense += m.attention_params_per_layer / p.tp;
      if (m.moe_layer[l]) {
        lp.dense += (m.shared_expert_params + m.router_params) / p.tp;
        lp.experts += m.expert_params * (static_cast<double>(m.slots()) / p.ep) / p.etp;
      } else {
        lp.dense += m.dense_ffn_params / p.tp;
      }
    }
    if (vstage == 0) lp.dense += m.embedding_params / p.tp;
    if (vstage == p.pp * p.virtual_stages - 1) lp.dense += m.output_params / p.tp;
  }
  return lp;
}

namespace {

// Activation bytes per token of one layer with nothing recomputed, before
// tensor-parallel division, split into the part sequence parallelism divides
// (norm inputs, residuals) and the part tensor parallelism divides anyway.
struct LayerActivation {
  double replicated = 0;  // divided by tp only with sequence parallelism
  double sharded = 0;     // divided by tp always
  // What selective recompute (norms and activation functions) does not keep.
  double replicated_selective = 0, sharded_selective = 0;
};

LayerActivation layer_activation(const ModelShape& m, bool moe, double elt) {
  LayerActivation a;
  const double h = static_cast<double>(m.hidden);
  // Residual stream into both norms and the norms' outputs (inputs of
  // attention and of the FFN/MoE block). No dropout masks: current MoE LLMs
  // train without dropout.
  a.replicated += 2 * h * elt + 2 * h * elt;
  a.replicated_selective += 2 * h * elt;
  // Attention: Q, K, V (or MLA's latent and up-projected tensors) and the
  // attention output feeding the output projection.
  double q = 0, kv = 0, out = 0;
  if (m.is_mla()) {
    q = static_cast<double>(m.heads) * (m.qk_nope_head_dim + m.qk_rope_head_dim);
    kv = static_cast<double>(m.heads) * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim) +
         m.kv_lora_rank + m.q_lora_rank;
    out = static_cast<double>(m.heads) * m.v_head_dim;
  } else {
    q = static_cast<double>(m.heads) * m.head_dim;
    kv = 2.0 * m.kv_heads * m.head_dim;
    out = q;
  }
  a.sharded += (q + kv + out) * elt;
  auto ffn = [&](double f) {
    a.sharded += (m.swiglu ? 3 : 2) * f * elt;  // gate and up outputs (+ activation output)
    a.sharded_selective += f * elt;             // the activation output
  };
  if (!moe) {
    ffn(static_cast<double>(m.dense_ffn));
  } else {
    a.replicated += m.experts * 4.0;  // FP32 router logits
    if (m.shared_ffn > 0) ffn(static_cast<double>(m.shared_ffn));
  }
  return a;
}

}  // namespace

MemoryEstimate estimate_memory(const ModelShape& m, const ParallelConfig& p,
                               const TrainingWorkload& w, RoutedCopies routed,
                               double capacity_bytes, double reserved_bytes) {
  MemoryEstimate est;
  est.capacity_bytes = capacity_bytes;
  const double elt = hw::bytes_per_element(w.compute_dtype);
  const double tokens = static_cast<double>(w.seq_len) * p.micro_batch_size;
  const int64_t microbatches = w.microbatches(p);
  const auto ranges =
      split_layers(m.layers, p.pp * p.virtual_stages, p.embedding_and_loss_as_layers);
  for (int stage = 0; stage < p.pp; ++stage) {
    MemoryBreakdown mb;
    mb.stage = stage;
    const LocalParams lp = local_params(m, p, stage);
    const double dp = p.dp, edp = p.expert_dp();
    const auto shard = [&](double dense, double experts, bool sharded) {
      return sharded ? dense / dp + experts / edp : dense + experts;
    };
    mb.weights_bytes = 2 * shard(lp.dense, lp.experts, p.zero_stage >= 3);
    mb.gradients_bytes = 4 * shard(lp.dense, lp.experts, p.zero_stage >= 2);
    mb.optimizer_bytes = 12 * shard(lp.dense, lp.experts, p.zero_stage >= 1);

    // Layer-chunks in flight at the peak of the schedule (the start of the
    // steady state): 1F1B keeps pp - stage micro-batches; interleaving keeps
    // its warm-up passes plus one (Megatron-LM's schedule), each a chunk.
    int inflight;
    if (p.schedule == PipelineSchedule::kInterleaved && p.virtual_stages > 1) {
      inflight = static_cast<int>(
          std::min<int64_t>(microbatches * p.virtual_stages,
                            (p.pp - stage - 1) * 2 + (p.virtual_stages - 1) * p.pp + 1));
    } else {
      inflight = static_cast<int>(std::min<int64_t>(microbatches, p.pp - stage));
    }
    mb.inflight_microbatches = inflight;
    // Activations per chunk: average over this stage's chunks.
    double per_pass = 0, per_pass_moe_layers = 0, max_layer = 0;
    for (int chunk = 0; chunk < p.virtual_stages; ++chunk) {
      const LayerRange r = ranges[chunk * p.pp + stage];
      for (int l = r.begin; l < r.end; ++l) {
        const LayerActivation a = layer_activation(m, m.moe_layer[l], elt);
        const double tp_rep = p.sequence_parallel ? p.tp : 1;
        double bytes = a.replicated / tp_rep + a.sharded / p.tp;
        if (p.recompute == Recompute::kSelective) {
          bytes -= a.replicated_selective / tp_rep + a.sharded_selective / p.tp;
        }
        max_layer = std::max(max_layer, bytes * tokens);
        // Full recompute keeps only each layer's input.
        if (p.recompute == Recompute::kFull) bytes = m.hidden * elt / tp_rep;
        per_pass += bytes * tokens;
        if (m.moe_layer[l]) per_pass_moe_layers += 1;
      }
    }
    per_pass /= p.virtual_stages;
    per_pass_moe_layers /= p.virtual_stages;
    mb.activations_bytes = per_pass * inflight;
    // Routed copies: permuted input, expert intermediates (SwiGLU: gate, up,
    // activation) and expert output, stored per MoE layer in flight; with full
    // recompute only the layer being recomputed holds them.
    const double f = static_cast<double>(m.expert_ffn) / p.etp;
    // Selective recompute re-runs the activation function: its output is not kept.
    const int f_tensors = (m.swiglu ? 3 : 2) - (p.recompute == Recompute::kSelective ? 1 : 0);
    const double per_copy = (2.0 * m.hidden + f_tensors * f) * elt;
    const double moe_layers_held = p.recompute == Recompute::kFull
                                       ? std::min(1.0, per_pass_moe_layers)
                                       : per_pass_moe_layers * inflight;
    const double copies = moe_layers_held >= 1 ? routed.mean * (moe_layers_held - 1) + routed.max
                                               : routed.max * moe_layers_held;
    mb.routed_tokens_bytes = copies * p.etp * per_copy;
    if (p.recompute == Recompute::kFull) mb.activations_bytes += max_layer;
    // FP32 logits and their gradient on the last stage, one micro-batch at a time.
    if (stage == p.pp - 1) mb.logits_bytes = tokens * (static_cast<double>(m.vocab) / p.tp) * 4 * 2;
    mb.reserved_bytes = reserved_bytes;
    if (mb.total_bytes() > est.peak_bytes) {
      est.peak_bytes = mb.total_bytes();
      est.peak_stage = stage;
    }
    est.per_stage.push_back(mb);
  }
  return est;
}

}  // namespace moesim::exec
