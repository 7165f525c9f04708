#include "sim/exec/memory_model.h"

#include <algorithm>

#include "sim/exec/pipeline_schedule.h"

namespace moesim::exec {

int ModelShape::moe_layers() const {
  return static_cast<int>(std::count(moe_layer.begin(), moe_layer.end(), true));
}

LayerParams layer_params(const ModelShape& m, const ParallelConfig& p, int layer) {
  LayerParams lp;
  if (m.moe_layer[layer]) {
    lp.dense = (m.attention_params_per_layer + m.shared_expert_params + m.router_params) / p.tp;
    lp.experts = m.expert_params * (static_cast<double>(m.slots()) / p.ep) / p.etp;
  } else {
    lp.dense = (m.attention_params_per_layer + m.dense_ffn_params) / p.tp;
  }
  return lp;
}

LocalParams local_params(const ModelShape& m, const ParallelConfig& p, int stage) {
  // DualPipe: each rank holds two stages (chunks_per_rank), twice the parameters.
  const auto ranges = stage_layers(m, p);
  LocalParams lp;
  for (int chunk = 0; chunk < chunks_per_rank(p); ++chunk) {
    const int vstage = virtual_stage_of(p, stage, chunk);
    int mtp = 0;
    for (int l = ranges[vstage].begin; l < ranges[vstage].end; ++l) {
      const LayerParams layer = layer_params(m, p, l);
      lp.dense += layer.dense;
      lp.experts += layer.experts;
      lp.largest_layer = std::max(lp.largest_layer, layer.dense + layer.experts);
      if (m.is_mtp_layer(l)) ++mtp;
    }
    const bool first = vstage == 0, last = vstage == stage_count(p) - 1;
    if (first) lp.dense += m.embedding_params / p.tp;
    if (last) lp.dense += m.output_params / p.tp;
    // MTP modules: eh_proj (column-parallel) and norms; the stage embeds the
    // shifted tokens itself, so it holds the embedding too (Megatron-Core
    // GPTModel builds it where mtp_process is set). The output layer stays
    // on the last stage (built where post_process is), which runs the
    // modules' heads.
    if (mtp > 0) {
      lp.dense += mtp * m.mtp_module_params / p.tp;
      if (!first) lp.dense += m.embedding_params / p.tp;
    }
  }
  return lp;
}

namespace {

// Norms, residuals, attention tensors, activation inputs and the router keep
// BF16 (FP16 runs: the same size) under every compute dtype.
constexpr double kBf16Bytes = 2;
constexpr double kFp32Bytes = 4;
constexpr double kInt32Bytes = 4;
constexpr double kInt64Bytes = 8;
// Per logit element while the loss runs: the output layer's BF16 logits and
// the FP32 buffer the vocab-parallel cross entropy turns into the softmax and
// then, in place, into the gradient (fused and unfused alike).
constexpr double kBytesPerLogit = kBf16Bytes + kFp32Bytes;

// The --recompute-modules entry that frees a tensor under selective recompute.
enum class FreedBy { kNothing, kLayernorm, kMlp, kMoeAct, kMlaUpProj };

// Sums what one layer keeps for backward, and what it would keep with nothing
// recomputed. Selective recompute runs every module above, so any tensor one
// of them frees is not kept; "selective_moe" also frees every tensor of the
// MoE layer (tensors added after begin_moe_layer()). A kept tensor whose
// offload module (OffloadModule::kCount: none) is listed in
// parallel.offload_activations is counted as offloaded too, on the layer part
// that copies it: the attention side or the MLP side.
class SavedTensors {
 public:
  explicit SavedTensors(const ParallelConfig& p)
      : recompute_(p.recompute), offload_modules_(p.offload_modules) {}
  void begin_moe_layer() { in_moe_layer_ = true; }
  void per_token(double bytes, FreedBy freed_by = FreedBy::kNothing,
                 OffloadModule offload = OffloadModule::kCount) {
    saved_.all_per_token += bytes;
    if (freed(freed_by)) return;
    saved_.per_token += bytes;
    if (!offloaded(offload)) return;
    const bool attention_side = offload <= OffloadModule::kAttnProj;
    (attention_side ? saved_.offloaded_attention_per_token : saved_.offloaded_mlp_per_token) +=
        bytes;
  }
  void per_copy(double bytes, FreedBy freed_by = FreedBy::kNothing,
                OffloadModule offload = OffloadModule::kCount) {
    saved_.all_per_routed_copy += bytes;
    if (freed(freed_by)) return;
    saved_.per_routed_copy += bytes;
    if (offloaded(offload)) saved_.offloaded_per_routed_copy += bytes;
  }
  const LayerSavedBytes& saved() const { return saved_; }

 private:
  bool freed(FreedBy freed_by) const {
    if (in_moe_layer_ && recompute_ == Recompute::kSelectiveMoe) return true;
    return selective_recompute(recompute_) && freed_by != FreedBy::kNothing;
  }
  bool offloaded(OffloadModule m) const {
    return m != OffloadModule::kCount && ((offload_modules_ >> static_cast<int>(m)) & 1);
  }
  Recompute recompute_;
  uint8_t offload_modules_;
  bool in_moe_layer_ = false;
  LayerSavedBytes saved_;
};

// How a tensor only GEMMs keep is stored: in BF16 every consumer keeps the
// same tensor; in FP8 each Transformer Engine GEMM keeps its own quantized
// copy. (Where attention or the router keeps the BF16 tensor, Megatron-Core
// has the GEMM keep that one: TE's save_original_input.)
struct GemmInputStorage {
  double gemm_bytes = kBf16Bytes;  // per element, the compute dtype
  double gemms_only(double width, int gemms) const {
    return gemm_bytes == kBf16Bytes ? width * kBf16Bytes : gemms * width * gemm_bytes;
  }
};

// Per-GPU shares: `seq` divides the sequence-parallel (norm/residual) tensors,
// `tp` the tensor-parallel ones.
struct Shares {
  double seq = 1, tp = 1;
};

// The attention block's saved tensors, each with the offload module whose
// group captures it (attention.py, multi_latent_attention.py and
// transformer_layer.py wrap these modules): the fused norm and linear_qkv keep
// their input and output inside the qkv_linear group (MLA's separate input norm
// is attn_norm's, its down-projections and latents qkv_linear's); Q, K, V and
// O inside core_attn's (attn_proj offloads O again, the same storage: no more
// bytes); the block output, the pre-MLP norm's input, in mlp_norm's group where
// that norm is a separate module (MoE layers; a dense
// FFN fuses it into fc1, an IdentityOp Megatron skips). The FP32 softmax
// statistics (heads x tokens elements) stay: Megatron offloads no tensor under
// --min-offloaded-tensor-size (1M elements), and they rarely reach it.
void attention_tensors(const ModelShape& m, const ParallelConfig& p, GemmInputStorage st, Shares sh,
                       bool moe_layer, SavedTensors& t) {
  const double h = static_cast<double>(m.hidden);
  const double heads = m.heads / sh.tp;
  double out_width = 0;
  if (m.is_mla()) {
    // Separate input norm; its output feeds both down-projections.
    t.per_token(h * kBf16Bytes / sh.seq, FreedBy::kNothing, OffloadModule::kAttnNorm);  // residual
    t.per_token(st.gemms_only(h, 2) / sh.seq, FreedBy::kLayernorm, OffloadModule::kQkvLinear);
    for (const int64_t rank : {m.q_lora_rank, m.kv_lora_rank}) {
      if (rank == 0) continue;
      // latent: the fused norm's input; its norm output: the up-projection's input
      t.per_token(rank * kBf16Bytes / sh.seq, FreedBy::kNothing, OffloadModule::kQkvLinear);
      t.per_token(st.gemms_only(rank, 1) / sh.seq, FreedBy::kNothing, OffloadModule::kQkvLinear);
    }
    const double qk = static_cast<double>(m.qk_nope_head_dim + m.qk_rope_head_dim);
    t.per_token(heads * (2 * qk + m.v_head_dim) * kBf16Bytes, FreedBy::kMlaUpProj,
                OffloadModule::kCoreAttn);  // Q, K, V
    out_width = heads * m.v_head_dim;
  } else {
    // residual: the input norm's input; the norm fused into linear_qkv: its output
    t.per_token(h * kBf16Bytes / sh.seq, FreedBy::kNothing, OffloadModule::kQkvLinear);
    t.per_token(st.gemms_only(h, 1) / sh.seq, FreedBy::kNothing, OffloadModule::kQkvLinear);
    // KV heads are replicated when there are fewer than tp of them.
    const int kv = m.kv_heads > 0 ? m.kv_heads : m.heads;
    const double kv_heads = kv >= p.tp ? kv / sh.tp : 1;
    t.per_token((heads + 2 * kv_heads) * m.head_dim * kBf16Bytes, FreedBy::kNothing,
                OffloadModule::kCoreAttn);  // Q, K, V
    out_width = heads * m.head_dim;
  }
  // O: fused attention keeps it, linear_proj shares it
  t.per_token(out_width * kBf16Bytes, FreedBy::kNothing, OffloadModule::kCoreAttn);
  t.per_token(heads * kFp32Bytes);  // softmax statistics
  t.per_token(h * kBf16Bytes / sh.seq, FreedBy::kNothing,
              moe_layer ? OffloadModule::kMlpNorm : OffloadModule::kCount);  // block output
}

// fc1's output (the activation's input) and the activation's output (fc2's
// input) of an FFN `width_per_gpu` wide.
void ffn_tensors(const ModelShape& m, GemmInputStorage st, double width_per_gpu, FreedBy freed_by,
                 SavedTensors& t) {
  t.per_token((m.swiglu ? 2 : 1) * width_per_gpu * kBf16Bytes, freed_by);
  t.per_token(st.gemms_only(width_per_gpu, 1), freed_by);
}

// TE's fused permutation map: int32 [tokens, 2 x experts + 1].
double permute_map_bytes(double experts) {
  return (2 * experts + 1) * kInt32Bytes;
}

// The MoE layer's saved tensors; experts.py wraps fc1 in the expert_fc1
// offload group (its input) and the activation in moe_act's (fc1's output,
// which the weighted SwiGLU keeps, and the routing probability).
void moe_tensors(const ModelShape& m, const ParallelConfig& p, GemmInputStorage st, Shares sh,
                 SavedTensors& t) {
  t.begin_moe_layer();
  const double h = static_cast<double>(m.hidden);
  const bool shared_experts = m.shared_ffn > 0;
  // Pre-MLP norm output: the router keeps it (BF16), and shared experts' fc1
  // keeps the same tensor, in FP8 runs too (shared_experts.py sets TE's
  // save_original_input so as not to hold a quantized copy beside the router's).
  t.per_token(h * kBf16Bytes / sh.seq, FreedBy::kLayernorm);
  t.per_token(m.slots() * kFp32Bytes / sh.seq);  // router scores (FP32 router)
  const bool all_to_all_dispatcher = p.a2a_algo == coll::AllToAllAlgorithm::kDirect;
  if (all_to_all_dispatcher) t.per_token(permute_map_bytes(m.slots()) / sh.seq);
  if (shared_experts) ffn_tensors(m, st, m.shared_ffn / sh.tp, FreedBy::kNothing, t);
  // Per routed copy, grouped GEMM experts.
  const double width = static_cast<double>(m.expert_ffn) / p.etp;
  t.per_copy(st.gemms_only(h, 1), FreedBy::kNothing, OffloadModule::kExpertFc1);  // fc1's input
  t.per_copy((m.swiglu ? 2 : 1) * width * kBf16Bytes, FreedBy::kNothing,
             OffloadModule::kMoeAct);                                 // fc1's output
  t.per_copy(st.gemms_only(width, 1), FreedBy::kMoeAct);              // fc2's input
  t.per_copy(kFp32Bytes, FreedBy::kNothing, OffloadModule::kMoeAct);  // routing probability
  // DeepEP permutes after dispatch, over received tokens and local experts;
  // counting it per copy bounds it from above (a token reaches a rank once).
  if (!all_to_all_dispatcher) t.per_copy(permute_map_bytes(static_cast<double>(m.slots()) / p.ep));
}

// What one model chunk (virtual stage) keeps per micro-batch, on the GPU.
struct ChunkSaved {
  double activations = 0;  // non-routed bytes that stay on the GPU (offloaded ones left out)
  int moe_layers = 0;
  // Output heads with their loss: the model's (last stage) and one per MTP
  // module. Each keeps its logits' loss buffers until its backward.
  int losses = 0;
  // The most one layer keeps (non-routed bytes on the GPU), and whether it is
  // MoE: what a forward paired with a backward adds before the backward frees
  // a layer.
  double layer_activations = 0;
  bool layer_moe = false;
  // The most one layer offloads (non-routed bytes): on the GPU while its
  // copy out is in flight, and again once reloaded for its backward.
  double layer_offloaded = 0;
  // What one pass leaves in pinned host memory: every layer's offloaded
  // non-routed bytes (routed copies' are added per MoE layer by the walk).
  double offloaded = 0;
  // Recomputed in backward: the layer being recomputed holds, beyond what it
  // kept, all its tensors (full recompute: the whole layer; selective_moe:
  // its MoE part) and its routed copies', at the busiest GPU's count.
  double recompute_activations = 0, recompute_routed = 0;
};

// Bytes the routed copies of `moe_layers` MoE layers take on one GPU: the mean
// for all but one layer, the busiest GPU's count for that one.
double routed_bytes(int moe_layers, RoutedCopies routed, int etp, double per_copy) {
  if (moe_layers <= 0) return 0;
  return (routed.mean * (moe_layers - 1) + routed.max) * etp * per_copy;
}

// Tokens of one micro-batch on one GPU's context-parallel rank.
double tokens_per_gpu(const ParallelConfig& p, const TrainingWorkload& w) {
  return static_cast<double>(w.seq_len) / p.cp * p.micro_batch_size;
}

std::vector<ChunkSaved> chunk_saved(const ModelShape& m, const ParallelConfig& p,
                                    const TrainingWorkload& w, int stage, RoutedCopies routed) {
  const double tokens = tokens_per_gpu(p, w);
  const double seq_share = p.sequence_parallel ? p.tp : 1;
  const int vstages = stage_count(p);
  const auto ranges = stage_layers(m, p);
  std::vector<ChunkSaved> chunks(chunks_per_rank(p));
  for (int chunk = 0; chunk < chunks_per_rank(p); ++chunk) {
    const int vstage = virtual_stage_of(p, stage, chunk);
    ChunkSaved& c = chunks[chunk];
    for (int l = ranges[vstage].begin; l < ranges[vstage].end; ++l) {
      const LayerSavedBytes b = layer_saved_bytes(m, p, w.compute_dtype, l);
      const double offloaded = b.offloaded_per_token() * tokens;
      const double resident = b.per_token * tokens - offloaded;
      c.activations += resident;
      c.layer_offloaded = std::max(c.layer_offloaded, offloaded);
      c.offloaded += offloaded;
      if (m.moe_layer[l]) ++c.moe_layers;
      if (resident >= c.layer_activations) {
        c.layer_activations = resident;
        c.layer_moe = m.moe_layer[l];
      }
      // An MTP module also keeps the inputs of its two input norms, of
      // eh_proj (their concatenation) and of its output norm.
      if (m.is_mtp_layer(l)) c.activations += 5 * m.hidden * kBf16Bytes * tokens / seq_share;
      const double copies = m.moe_layer[l] ? routed.max * p.etp : 0;
      double recomputed = 0, recomputed_routed = 0;
      if (p.recompute == Recompute::kFull) {
        recomputed = b.all_per_token * tokens;
        recomputed_routed = b.all_per_routed_copy * copies;
      } else if (p.recompute == Recompute::kSelectiveMoe && m.moe_layer[l]) {
        recomputed = (b.all_per_token - b.per_token) * tokens;
        recomputed_routed = b.all_per_routed_copy * copies;
      }
      if (recomputed + recomputed_routed > c.recompute_activations + c.recompute_routed) {
        c.recompute_activations = recomputed;
        c.recompute_routed = recomputed_routed;
      }
    }
    // The embedding keeps the token ids (int64, every tensor-parallel rank).
    if (vstage == 0) c.activations += tokens * kInt64Bytes;
    if (vstage == vstages - 1) {
      // The final norm keeps its input, the output layer its input (BF16),
      // and each MTP module's head its own input (pipeline_schedule.h mtp_stage).
      c.activations += (2 + m.mtp_layers) * m.hidden * kBf16Bytes * tokens / seq_share;
      c.losses += 1 + m.mtp_layers;
    }
  }
  return chunks;
}

// The moment a stage holds the most, walking its pipeline schedule.
struct StagePeak {
  double activations = 0, routed = 0, logits = 0;
  int passes = 0;
  // The most offloaded activations in host memory at any moment of the walk
  // (not necessarily the GPU's peak moment).
  double host_offload = 0;
  double total() const { return activations + routed + logits; }
};

StagePeak stage_peak(const ModelShape& m, const ParallelConfig& p, const TrainingWorkload& w,
                     int stage, RoutedCopies routed) {
  const std::vector<ChunkSaved> chunks = chunk_saved(m, p, w, stage, routed);
  // Every MoE layer keeps the same bytes per routed copy.
  const int first_moe = static_cast<int>(std::find(m.moe_layer.begin(), m.moe_layer.end(), true) -
                                         m.moe_layer.begin());
  const LayerSavedBytes moe_layer = first_moe < m.layers
                                        ? layer_saved_bytes(m, p, w.compute_dtype, first_moe)
                                        : LayerSavedBytes{};
  const double per_copy = moe_layer.per_routed_copy - moe_layer.offloaded_per_routed_copy;
  const double tokens = tokens_per_gpu(p, w);
  const double logits = tokens * (static_cast<double>(m.vocab) / p.tp) * kBytesPerLogit;
  // One layer's offloaded tensors are on the GPU at any moment a pass is
  // held: the last layer's while its copy to the host runs, or the next
  // layer's once reloaded for backward (Megatron-Core also keeps the last
  // group of each module on the GPU where its backward follows at once).
  double in_flight_offload = 0;
  for (const ChunkSaved& c : chunks)
    in_flight_offload = std::max(in_flight_offload, c.layer_offloaded);
  const double in_flight_offload_routed = routed.max * p.etp * moe_layer.offloaded_per_routed_copy;
  const double ring = cp_ring_buffer_bytes(m, p, w);
  std::vector<int> held(chunks.size(), 0);  // forward passes held per chunk
  StagePeak best;
  double host_offload = 0;
  const auto consider = [&](double extra_activations, double extra_routed, double extra_logits) {
    StagePeak now;
    int moe_layers = 0;
    double host = 0;
    for (size_t c = 0; c < chunks.size(); ++c) {
      now.activations += held[c] * chunks[c].activations;
      moe_layers += held[c] * chunks[c].moe_layers;
      now.passes += held[c];
      host += held[c] * (chunks[c].offloaded + chunks[c].moe_layers * routed.mean * p.etp *
                                                   moe_layer.offloaded_per_routed_copy);
    }
    host_offload = std::max(host_offload, host);
    now.activations += extra_activations;
    now.routed = routed_bytes(moe_layers, routed, p.etp, per_copy) + extra_routed;
    if (now.passes > 0) {
      now.activations += in_flight_offload;
      now.routed += in_flight_offload_routed;
    }
    now.logits = extra_logits;
    if (now.total() > best.total()) best = now;
  };
  const bool recomputes = p.recompute == Recompute::kFull ||
                          (p.recompute == Recompute::kSelectiveMoe && m.moe_layers() > 0);
  const std::vector<PipelineItem> order =
      schedule_order(p, stage, static_cast<int>(w.microbatches(p)));
  for (size_t i = 0; i < order.size(); ++i) {
    const PipelineItem& item = order[i];
    const ChunkSaved& c = chunks[item.chunk];
    if (item.paired_with_next && i + 1 < order.size()) {
      // An overlapped pair runs forward layer j beside backward layer L-1-j:
      // the backward frees a layer as the forward adds one, so the pair holds
      // at most one of the forward's layers more than before it; then the
      // forward is held, the backward freed, and the loss (last stage) runs.
      consider(c.layer_activations + ring,
               c.layer_moe ? routed_bytes(1, routed, p.etp, per_copy) : 0, 0);
      ++held[item.chunk];
      --held[order[++i].chunk];
      consider(0, 0, c.losses * logits);
      continue;
    }
    switch (item.kind) {
      case PassKind::kForward:
        ++held[item.chunk];
        // The context-parallel ring's buffers live while a layer's attention
        // runs (counted at the pass's end: an upper bound).
        consider(ring, 0, 0);
        consider(0, 0, c.losses * logits);
        break;
      case PassKind::kBackward:
        if (recomputes) consider(c.recompute_activations, c.recompute_routed, 0);
        --held[item.chunk];
        break;
      case PassKind::kBackwardInput:
        // Zero-bubble: the weight gradients still need the GEMM inputs, most
        // of what the pass keeps; counted as held until its W pass (an upper
        // bound: attention's score tensors are free by then).
        break;
      case PassKind::kWeightGrad:
        --held[item.chunk];
        break;
    }
  }
  best.host_offload = host_offload;
  return best;
}

}  // namespace

double cp_ring_buffer_bytes(const ModelShape& m, const ParallelConfig& p,
                            const TrainingWorkload& w) {
  if (p.cp == 1) return 0;
  const double tokens = tokens_per_gpu(p, w);
  const double heads = static_cast<double>(m.heads) / p.tp;
  double kv_width = 0, o_width = 0;
  if (m.is_mla()) {
    kv_width = heads * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim);
    o_width = heads * m.v_head_dim;
  } else {
    const int kv = m.kv_heads > 0 ? m.kv_heads : m.heads;
    const double kv_heads = kv >= p.tp ? static_cast<double>(kv) / p.tp : 1;
    kv_width = 2 * kv_heads * m.head_dim;
    o_width = heads * m.head_dim;
  }
  // The received key/value blocks (cp - 1 of them: the first is the layer's
  // own, saved for backward anyway), cp per-step outputs in BF16 and the FP32
  // output they are merged into.
  return tokens *
         ((p.cp - 1) * kv_width * kBf16Bytes + p.cp * o_width * kBf16Bytes + o_width * kFp32Bytes);
}

LayerSavedBytes layer_saved_bytes(const ModelShape& m, const ParallelConfig& p,
                                  hw::DType compute_dtype, int layer) {
  const GemmInputStorage storage{hw::bytes_per_element(compute_dtype)};
  const Shares shares{p.sequence_parallel ? static_cast<double>(p.tp) : 1.0,
                      static_cast<double>(p.tp)};
  SavedTensors t(p);
  attention_tensors(m, p, storage, shares, m.moe_layer[layer], t);
  if (m.moe_layer[layer]) {
    moe_tensors(m, p, storage, shares, t);
  } else {
    // Dense FFN: the norm is fused into fc1; `mlp` recompute frees all but the input.
    t.per_token(storage.gemms_only(static_cast<double>(m.hidden), 1) / shares.seq, FreedBy::kMlp);
    ffn_tensors(m, storage, m.dense_ffn / shares.tp, FreedBy::kMlp, t);
  }
  LayerSavedBytes saved = t.saved();
  if (p.recompute == Recompute::kFull) {
    // Full recompute checkpoints each layer's input (tensor_parallel.checkpoint).
    saved.per_token = m.hidden * kBf16Bytes / shares.seq;
    saved.per_routed_copy = 0;
    saved.offloaded_attention_per_token = saved.offloaded_mlp_per_token = 0;
    saved.offloaded_per_routed_copy = 0;
  }
  return saved;
}

MemoryEstimate estimate_memory(const ModelShape& m, const ParallelConfig& p,
                               const TrainingWorkload& w, RoutedCopies routed,
                               double capacity_bytes, double reserved_bytes) {
  MemoryEstimate est;
  est.capacity_bytes = capacity_bytes;
  est.cross_entropy_loss_fusion = p.cross_entropy_loss_fusion;
  est.offloads_activations = p.offload_modules != 0;
  for (int stage = 0; stage < p.pp; ++stage) {
    MemoryBreakdown mb;
    mb.stage = stage;
    const LocalParams lp = local_params(m, p, stage);
    const double dp = p.dense_dp(), edp = p.expert_dp();
    const auto shard = [&](double dense, double experts, bool sharded) {
      return sharded ? dense / dp + experts / edp : dense + experts;
    };
    mb.weights_bytes = 2 * shard(lp.dense, lp.experts, p.zero_stage >= 3);
    mb.gradients_bytes = 4 * shard(lp.dense, lp.experts, p.zero_stage >= 2);
    // Megatron-FSDP (zero_stage 2 = optim_grads, 3 = optim_grads_params)
    // double-buffers two units (layers) unsharded: their gathered BF16
    // weights (3) and their FP32 gradients until reduce-scattered (2, 3)
    // (docs/user-guide/features/megatron_fsdp.md, "at least two FSDP units").
    if (p.zero_stage >= 3) mb.weights_bytes += 2 * 2 * lp.largest_layer;
    if (p.zero_stage >= 2) mb.gradients_bytes += 2 * 4 * lp.largest_layer;
    mb.optimizer_bytes =
        p.adam.state_bytes(w.compute_dtype) * shard(lp.dense, lp.experts, p.zero_stage >= 1);
    const StagePeak peak = stage_peak(m, p, w, stage, routed);
    mb.activations_bytes = peak.activations;
    mb.routed_tokens_bytes = peak.routed;
    mb.logits_bytes = peak.logits;
    mb.inflight_microbatches = peak.passes;
    mb.host_offload_bytes = peak.host_offload;
    est.host_offload_peak_bytes = std::max(est.host_offload_peak_bytes, peak.host_offload);
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
