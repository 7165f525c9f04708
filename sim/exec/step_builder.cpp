#include "sim/exec/step_builder.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include "sim/exec/layer_costs.h"
#include "sim/exec/memory_model.h"
#include "sim/exec/pipeline_schedule.h"

namespace moesim::exec {
namespace {

constexpr uint32_t kNoTask = TaskGraph::kNoTask;

SimTime seconds(double s) {
  return SimTime::from_seconds(std::max(0.0, s));
}

// Token copies the local experts of EP rank `position` receive in `rs`.
int64_t received_copies(const RoutingSample& rs, int position) {
  int64_t copies = 0;
  for (int e = 0; e < rs.local_experts; ++e)
    copies += rs.expert_tokens[static_cast<size_t>(position) * rs.local_experts + e];
  return copies;
}

// kMirror (DualPipe): the two ranks holding copies of the same stages, r and
// pp-1-r, whose gradients are summed.
// kCp: the context-parallel ring.
// kEmbedding: the first and last pipeline ranks, which sum their word
// embeddings' gradients (Megatron-Core parallel_state.py
// default_embedding_ranks; finalize_model_grads.py
// _allreduce_word_embedding_grads).
enum GroupKind { kTp, kEp, kEtp, kDp, kEdp, kMirror, kCp, kEmbedding, kGroupKinds };

// Gradient buckets are layers (their index) or one of the parameters outside
// them: the first stage's embedding, an MTP stage's own embedding copy, the
// last stage's output layer.
enum ExtraBucket { kEmbeddingBucket = -1, kMtpEmbeddingBucket = -2, kOutputBucket = -3 };
constexpr int kExtraBuckets = 3;
int bucket_slot(int bucket) {
  return bucket + kExtraBuckets;
}

// The two parts of a layer whose saved tensors are offloaded apart: the
// attention block's (attn_norm, qkv_linear, core_attn, attn_proj) and the MLP
// block's (mlp_norm, expert_fc1, moe_act).
enum OffloadPart { kAttentionPart, kMlpPart, kOffloadParts };

// With moe_a2a_overlap, a layer's pass is emitted in the five parts
// Megatron-Core splits a transformer layer into for its combined 1F1B
// (models/gpt/fine_grained_callables.py build_transformer_layer_callables),
// so that two passes' parts can interleave:
//   forward:  kPre = attention, shared experts, router and permute
//             (submodule_pre_dispatch_forward); kFirstComm = dispatch;
//             kMlp = routed experts (dense layers: the FFN); kSecondComm =
//             combine; kPost = unpermute.
//   backward: kPre = unpermute's backward; kFirstComm = the combine's
//             backward (towards the experts); kMlp = expert data gradients,
//             then their weight gradients (--delay-wgrad-compute: the
//             dispatch's backward waits for the data gradients only);
//             kSecondComm = the dispatch's backward; kPost = router, shared
//             experts and attention backward.
// kWhole is the layer as one unit (moe_a2a_overlap "none").
enum class LayerStage : uint8_t { kPre, kFirstComm, kMlp, kSecondComm, kPost, kWhole };

// The graph wiring of one training step: every GPU's passes in its pipeline
// schedule order, each layer's kernels (priced by LayerCostModel) on the
// compute stream, its tensor-, expert- and data-parallel collectives on their
// streams, pipeline transfers between stages, gradient reductions and the
// optimizer, with the dependencies between them.
class StepGraphBuilder {
 public:
  StepGraphBuilder(const ModelShape& model, const ParallelConfig& parallel,
                   const TrainingWorkload& workload, const std::vector<LayerRouting>& routing,
                   const hw::ComputeCostModel& cost, const FrameworkOverheads& framework,
                   int gpu_sms, double host_link_bytes_per_s)
      : model_(model),
        parallel_(parallel),
        workload_(workload),
        routing_(routing),
        cost_(cost),
        framework_(framework),
        gpu_sms_(gpu_sms),
        host_link_bytes_per_s_(host_link_bytes_per_s),
        layout_(parallel),
        layer_costs_(model, parallel, workload, routing, cost) {}

  StepGraph build();

 private:
  void intern_groups();
  CollectiveId collective(GroupKind kind, int gpu, CollectiveDesc desc);
  TaskId compute(int gpu, Category c, double s, TaskLabel label, TaskId dep = kNoTask);
  // Selective recompute's attention part, as a layer's backward begins: the
  // norms, then (MLA) the up-projections and their assembly.
  TaskId attention_recompute(int gpu, TaskLabel label, TaskId dep) {
    const LayerKernelSeconds& k = layer_costs_.kernels();
    dep = compute(gpu, Category::kAttention, k.norm_recompute, label, dep);
    if (k.attention_recompute > 0) {
      dep = compute(gpu, Category::kAttention, k.attention_recompute, label, dep);
    }
    return dep;
  }
  TaskId comm(int gpu, Stream stream, Category c, GroupKind kind, CollectiveDesc desc,
              TaskLabel label, TaskId dep = kNoTask);
  // TP collective around a block: all-reduce, or with sequence parallelism an
  // all-gather before and a reduce-scatter after (same bytes in total).
  TaskId tp_before(int gpu, TaskLabel label, TaskId dep);
  TaskId tp_after(int gpu, TaskLabel label, TaskId dep);
  // ZeRO-3: gathers `layer`'s parameters into the next of the two unit
  // buffers; returns that buffer (-1: nothing gathered).
  int gather_layer_params(int gpu, int layer, TaskLabel label);
  // The unit in `buffer` is no longer used once `done` has run.
  void release_param_buffer(int buffer, TaskId done) {
    if (buffer >= 0) param_buffer_free_[buffer] = done;
  }
  TaskId emit_layer(int gpu, int layer, TaskLabel label, TaskId dep);
  TaskId emit_layer_kernels(int gpu, int layer, TaskLabel label, TaskId dep);
  // The attention block's kernels (with cp > 1 its context-parallel ring);
  // `defer_wgrad`: leave the projections' weight gradients for a W pass.
  // `reloaded`: offloaded tensors its first kernel also waits for.
  TaskId emit_attention(int gpu, TaskLabel label, TaskId dep, bool backward,
                        bool defer_wgrad = false, TaskId reloaded = kNoTask) {
    if (parallel_.cp == 1 && reloaded == kNoTask) {
      const LayerKernelSeconds& k = layer_costs_.kernels();
      const double s =
          backward ? k.attention_bwd - (defer_wgrad ? k.attention_wgrad : 0) : k.attention_fwd;
      return compute(gpu, Category::kAttention, s, label, dep);
    }
    return emit_attention_ring(gpu, label, dep, backward, defer_wgrad, reloaded);
  }
  TaskId emit_attention_ring(int gpu, TaskLabel label, TaskId dep, bool backward, bool defer_wgrad,
                             TaskId reloaded);
  // Activation offload: the copy out of one part of a layer's forward (after
  // `after`), and its reload ahead of that part's backward (kNoTask when the
  // part offloads nothing).
  void offload_out(int gpu, int layer, OffloadPart part, TaskLabel label, TaskId after) {
    if (parallel_.offload_modules != 0) emit_offload_out(gpu, layer, part, label, after);
  }
  TaskId reload(int gpu, int layer, OffloadPart part, TaskLabel label) {
    return parallel_.offload_modules != 0 ? emit_reload(gpu, layer, part, label) : kNoTask;
  }
  void emit_offload_out(int gpu, int layer, OffloadPart part, TaskLabel label, TaskId after);
  TaskId emit_reload(int gpu, int layer, OffloadPart part, TaskLabel label);
  double offload_bytes(int gpu, int layer, OffloadPart part, int microbatch) const;
  // Whether `part` of `layer` has an offloaded module (whether or not this
  // pass keeps it): the end of its backward is where the next reload starts,
  // as Megatron-Core reloads at the end of every offload group's backward.
  bool offloads(int layer, OffloadPart part) const {
    if (parallel_.offload_modules == 0) return false;
    const LayerSavedBytes& b = saved_by_layer_[layer];
    return part == kAttentionPart
               ? b.offloaded_attention_per_token > 0
               : b.offloaded_mlp_per_token > 0 || b.offloaded_per_routed_copy > 0;
  }
  TaskId emit_moe(int gpu, int layer, TaskLabel label, TaskId dep,
                  LayerStage stage = LayerStage::kWhole, bool defer_wgrad = false);
  void emit_pass_overhead(int gpu, TaskLabel label);
  void emit_gpu(int gpu);

  // moe_a2a_overlap "1f1b" / "dualpipe": passes emitted part by part.
  struct PassCursor {
    int gpu = 0;
    TaskLabel label;
    bool backward = false;
    bool defer_wgrad = false;  // zero-bubble backward: weight gradients in a later W pass
    LayerRange layers;
    bool first_vstage = false, last_vstage = false;
    TaskId chain = kNoTask;    // the pass's last task so far: what its next part waits for
    TaskId first = kNoTask;    // the pass's first task (gated by its pipeline receive)
    TaskId pending = kNoTask;  // ZeRO-3 gather its next task waits for
    int param_buffer = -1;     // ZeRO-3 buffer its current layer's parameters are in
  };
  PassCursor start_pass(int gpu, const PipelineItem& item);
  void emit_layer_stage(int layer, LayerStage stage, PassCursor& pass);
  void emit_layer_alone(int layer, PassCursor& pass);
  void emit_layer_pair(int forward_layer, PassCursor& forward, int backward_layer,
                       PassCursor& backward);
  void emit_combined(int gpu, const PipelineItem* forward, const PipelineItem* backward);
  void emit_weight_grad(int gpu, const PipelineItem& item);
  void emit_gpu_overlapped(int gpu);
  void emit_pipeline_transfers();
  void emit_data_parallel(int gpu);

  const ModelShape& model_;
  const ParallelConfig& parallel_;
  const TrainingWorkload& workload_;
  const std::vector<LayerRouting>& routing_;
  const hw::ComputeCostModel& cost_;
  const FrameworkOverheads& framework_;
  int gpu_sms_;
  double host_link_bytes_per_s_;
  RankLayout layout_;
  LayerCostModel layer_costs_;
  StepGraph step_;
  int64_t tokens_per_microbatch_ = 0;  // per data-parallel rank
  int microbatches_ = 0;
  std::vector<LayerRange> vstage_layers_;
  int mtp_vstage_ = -1;  // the virtual stage holding the MTP modules (mtp_stage)
  // The output heads (with their losses) the last virtual stage runs: the
  // model's and each MTP module's.
  double output_heads() const { return 1.0 + model_.mtp_layers; }
  std::vector<int> moe_index_;         // layer -> MoE ordinal (-1 for dense layers)
  uint32_t ring_matrix_ = UINT32_MAX;  // the context-parallel ring's send matrix (cp > 1)
  // Activation offload, for the GPU being emitted: each (micro-batch, chunk,
  // layer, part)'s copy out (kNoTask: none), indexed by offload_slot(); the
  // task a reload waits for (the end of the previous offloaded part's
  // backward); and whether the forward being emitted keeps its last layer.
  std::vector<TaskId> offload_out_;
  std::vector<LayerSavedBytes> saved_by_layer_;  // per layer, when offloading
  TaskId reload_trigger_ = kNoTask;
  bool keep_last_layer_ = false;
  size_t offload_slot(int microbatch, int chunk, int layer, OffloadPart part) const {
    const int v = chunks_per_rank(parallel_);
    return ((static_cast<size_t>(microbatch) * v + chunk) * model_.layers + layer) * kOffloadParts +
           part;
  }

  std::array<std::vector<uint32_t>, kGroupKinds> group_of_;  // [kind][gpu] -> group id
  std::vector<std::vector<CollectiveId>> group_collectives_;
  std::array<std::vector<uint32_t>, kGroupKinds> issued_;  // [kind][gpu] -> collectives so far

  // Per GPU and (micro-batch, chunk): first/last task of its forward and
  // backward pass, and the compute task before each pass (for p2p receives).
  struct PassTasks {
    TaskId forward_first = kNoTask, forward_last = kNoTask, before_forward = kNoTask;
    TaskId backward_first = kNoTask, backward_last = kNoTask, before_backward = kNoTask;
  };
  std::vector<std::vector<PassTasks>> passes_;
  std::vector<TaskId> last_compute_;                              // per GPU, while emitting
  std::vector<std::vector<std::pair<TaskId, int>>> grads_ready_;  // per GPU: (task, bucket)
  // Overlap modes: per gradient bucket of the GPU being emitted (bucket_slot),
  // the task after which its gradients are complete (its last backward or W
  // pass so far).
  std::vector<TaskId> bucket_grads_done_;
  // ZeRO-2/3 (Megatron-FSDP's optim_grads / optim_grads_params) keep only a
  // shard of the gradients: every backward reduce-scatters each layer's
  // gradients and accumulates the shard (megatron_fsdp.md, sharding
  // strategies). ZeRO-0/1 reduce once, after the last micro-batch.
  bool reduces_every_microbatch() const { return parallel_.zero_stage >= 2; }
  // Overlap modes: `bucket`'s weight gradients for the current pass are done at `task`.
  void grads_done(int gpu, int bucket, TaskId task) {
    bucket_grads_done_[bucket_slot(bucket)] = task;
    if (reduces_every_microbatch()) grads_ready_[gpu].push_back({task, bucket});
  }
  // Plain schedules: `bucket`'s gradients for micro-batch `microbatch` are done at `task`.
  void grads_ready(int gpu, int bucket, int microbatch, TaskId task) {
    if (reduces_every_microbatch() || microbatch == microbatches_ - 1)
      grads_ready_[gpu].push_back({task, bucket});
  }
  // Parameters (elements) of one gradient bucket on one GPU.
  LayerParams bucket_params(int bucket) const;
  // Whether the first and last pipeline ranks sum their word embeddings'
  // gradients: a tied output layer or an MTP stage uses the embedding too.
  bool sums_embedding_grads() const {
    return parallel_.pp > 1 && parallel_.moe_a2a_overlap != MoeA2aOverlap::kDualPipe &&
           model_.embedding_params > 0 && (model_.output_params == 0 || model_.mtp_layers > 0);
  }
  // A dependency for the next task emitted (the ZeRO-3 parameter gather the
  // layer's first kernel waits for).
  TaskId pending_dep_ = kNoTask;
  // ZeRO-3's two unsharded-parameter buffers on the GPU being emitted, used in
  // turn: the task after which each one's last unit is no longer needed
  // (kNoTask: never used yet).
  std::array<TaskId, 2> param_buffer_free_{kNoTask, kNoTask};
  int param_buffer_next_ = 0;
  int open_param_buffer_ = -1;  // one-pass-at-a-time emission: the layer's buffer
  void take_pending_dep(TaskId id) {
    if (pending_dep_ != kNoTask) step_.graph.depend(pending_dep_, id);
    pending_dep_ = kNoTask;
  }
};

void StepGraphBuilder::intern_groups() {
  std::map<std::vector<int>, uint32_t> ids;
  for (int k = 0; k < kGroupKinds; ++k) {
    group_of_[k].resize(parallel_.gpus());
    issued_[k].assign(parallel_.gpus(), 0);
    if (k == kMirror && parallel_.moe_a2a_overlap != MoeA2aOverlap::kDualPipe) continue;
    if (k == kCp && parallel_.cp == 1) continue;
    if (k == kEmbedding && !sums_embedding_grads()) continue;
    for (int g = 0; g < parallel_.gpus(); ++g) {
      std::vector<int> members;
      switch (k) {
        case kTp:
          members = layout_.tp_group(g);
          break;
        case kEp:
          members = layout_.ep_group(g);
          break;
        case kEtp:
          members = layout_.etp_group(g);
          break;
        case kDp:
          members = layout_.dp_group(g);
          break;
        case kEdp:
          members = layout_.edp_group(g);
          break;
        case kMirror: {
          const RankCoords& rc = layout_.coords(g);
          const int mirror = layout_.rank(rc.tp, rc.cp, rc.dp, parallel_.pp - 1 - rc.pp);
          members = {std::min(g, mirror), std::max(g, mirror)};
          break;
        }
        case kCp:
          members = layout_.cp_group(g);
          break;
        case kEmbedding: {
          const RankCoords& rc = layout_.coords(g);
          members = {layout_.rank(rc.tp, rc.cp, rc.dp, 0),
                     layout_.rank(rc.tp, rc.cp, rc.dp, parallel_.pp - 1)};
          break;
        }
      }
      // Groups of different kinds with the same members are distinct (their
      // collectives are queued independently).
      members.push_back(-1 - k);
      auto [it, fresh] = ids.emplace(members, static_cast<uint32_t>(step_.groups.size()));
      if (fresh) {
        members.pop_back();
        step_.groups.push_back(std::move(members));
        group_collectives_.emplace_back();
      }
      group_of_[k][g] = it->second;
    }
  }
}

// The n-th collective a GPU issues on one of its groups is the same collective
// as every other member's n-th: all members run the same program.
CollectiveId StepGraphBuilder::collective(GroupKind kind, int gpu, CollectiveDesc desc) {
  const uint32_t group = group_of_[kind][gpu];
  auto& list = group_collectives_[group];
  uint32_t& n = issued_[kind][gpu];
  if (n == list.size()) {
    desc.group = group;
    list.push_back(step_.graph.add_collective(static_cast<uint32_t>(step_.collectives.size())));
    step_.collectives.push_back(desc);
  }
  return list[n++];
}

TaskId StepGraphBuilder::compute(int gpu, Category c, double s, TaskLabel label, TaskId dep) {
  const TaskId id = step_.graph.add_compute(gpu, c, seconds(s), label);
  if (dep != kNoTask) step_.graph.depend(dep, id);
  take_pending_dep(id);
  last_compute_[gpu] = id;
  return id;
}

TaskId StepGraphBuilder::comm(int gpu, Stream stream, Category c, GroupKind kind,
                              CollectiveDesc desc, TaskLabel label, TaskId dep) {
  const TaskId pending = pending_dep_;
  pending_dep_ = kNoTask;  // a collective issued now is not the layer's first task
  const TaskId id = step_.graph.add_comm(gpu, stream, c, collective(kind, gpu, desc), label);
  if (dep != kNoTask) step_.graph.depend(dep, id);
  pending_dep_ = pending;
  if (stream != Stream::kDpComm && stream != Stream::kParamGather) take_pending_dep(id);
  return id;
}

TaskId StepGraphBuilder::tp_before(int gpu, TaskLabel label, TaskId dep) {
  if (parallel_.tp == 1 || !parallel_.sequence_parallel) return dep;
  CollectiveDesc d{CollectiveOp::kAllGather};
  d.bytes = static_cast<double>(tokens_per_microbatch_) * model_.hidden *
            hw::bytes_per_element(workload_.tensor_dtype());
  return comm(gpu, Stream::kTpComm, Category::kTpComm, kTp, d, label, dep);
}

TaskId StepGraphBuilder::tp_after(int gpu, TaskLabel label, TaskId dep) {
  if (parallel_.tp == 1) return dep;
  CollectiveDesc d{parallel_.sequence_parallel ? CollectiveOp::kReduceScatter
                                               : CollectiveOp::kAllReduce};
  d.bytes = static_cast<double>(tokens_per_microbatch_) * model_.hidden *
            hw::bytes_per_element(workload_.tensor_dtype());
  return comm(gpu, Stream::kTpComm, Category::kTpComm, kTp, d, label, dep);
}

// The attention block. Without context parallelism one kernel (norms,
// projections, core attention); with it, the ring of step_builder.h: the part
// before the ring, cp steps of core attention and cp - 1 (forward) or cp
// (backward) ring transfers on the context-parallel stream, the part after.
TaskId StepGraphBuilder::emit_attention_ring(int gpu, TaskLabel label, TaskId dep, bool backward,
                                             bool defer_wgrad, TaskId reloaded) {
  const LayerKernelSeconds& k = layer_costs_.kernels();
  if (reloaded != kNoTask) {
    // The block's first kernel (the next task emitted) waits for the reload too.
    const TaskId first = static_cast<TaskId>(step_.graph.size());
    const TaskId last = emit_attention(gpu, label, dep, backward, defer_wgrad);
    step_.graph.depend(reloaded, first);
    return last;
  }
  if (parallel_.cp == 1) {
    const double s =
        backward ? k.attention_bwd - (defer_wgrad ? k.attention_wgrad : 0) : k.attention_fwd;
    return compute(gpu, Category::kAttention, s, label, dep);
  }
  const int cp = parallel_.cp;
  const double block = layer_costs_.cp_kv_block_bytes();
  CollectiveDesc step{CollectiveOp::kAllToAllV};
  step.matrix = ring_matrix_;
  step.point_to_point = true;
  auto ring_label = [&](int i) {
    TaskLabel l = label;
    l.chunk = static_cast<uint8_t>(std::min(i, 255));
    return l;
  };
  std::vector<TaskId> steps(cp);
  if (!backward) {
    const TaskId pre = compute(gpu, Category::kAttention, k.attention_pre_fwd, label, dep);
    TaskId received = kNoTask;
    for (int i = 0; i < cp; ++i) {
      TaskId sent = kNoTask;
      if (i + 1 < cp) {
        // Send this step's block on (issued behind the attention two steps back).
        step.bytes = block;
        sent = comm(gpu, Stream::kCpComm, Category::kCpComm, kCp, step, ring_label(i),
                    i == 0 ? pre : (i >= 2 ? steps[i - 2] : kNoTask));
      }
      steps[i] = compute(gpu, Category::kAttention, k.attention_ring_step_fwd, ring_label(i),
                         i == 0 ? pre : received);
      received = sent;
    }
    return compute(gpu, Category::kAttention, k.attention_post_fwd, label, steps[cp - 1]);
  }
  const TaskId post =
      compute(gpu, Category::kAttention,
              k.attention_post_bwd - (defer_wgrad ? k.attention_post_wgrad : 0), label, dep);
  TaskId received = kNoTask;
  for (int i = 0; i < cp; ++i) {
    // K, V only at the first step, dK, dV only at the last, both between.
    step.bytes = (i == 0 || i == cp - 1) ? block : 2 * block;
    const TaskId sent = comm(gpu, Stream::kCpComm, Category::kCpComm, kCp, step, ring_label(i),
                             i == 0 ? post : steps[i - 1]);
    steps[i] = compute(gpu, Category::kAttention, k.attention_ring_step_bwd, ring_label(i),
                       i == 0 ? post : received);
    received = sent;
  }
  return compute(gpu, Category::kAttention,
                 k.attention_pre_bwd - (defer_wgrad ? k.attention_pre_wgrad : 0), label, received);
}

// Activation offload: bytes one part of `layer` copies out for one micro-batch.
double StepGraphBuilder::offload_bytes(int gpu, int layer, OffloadPart part, int microbatch) const {
  const LayerSavedBytes& saved = saved_by_layer_[layer];
  const double tokens = static_cast<double>(tokens_per_microbatch_);
  if (part == kAttentionPart) return saved.offloaded_attention_per_token * tokens;
  double bytes = saved.offloaded_mlp_per_token * tokens;
  const int j = moe_index_[layer];
  if (j >= 0 && saved.offloaded_per_routed_copy > 0) {
    const LayerRouting& lr = routing_[j];
    const int sample =
        (microbatch + layout_.ep_group_index(gpu)) % static_cast<int>(lr.samples.size());
    const int64_t copies = received_copies(lr.samples[sample], layout_.coords(gpu).ep);
    bytes += saved.offloaded_per_routed_copy * static_cast<double>(copies) * parallel_.etp;
  }
  return bytes;
}

void StepGraphBuilder::emit_offload_out(int gpu, int layer, OffloadPart part, TaskLabel label,
                                        TaskId after) {
  if (label.phase != Phase::kForward) return;
  if (keep_last_layer_ &&
      layer ==
          vstage_layers_[virtual_stage_of(parallel_, layout_.coords(gpu).pp, label.chunk)].end -
              1) {
    return;
  }
  const double bytes = offload_bytes(gpu, layer, part, label.microbatch);
  if (bytes <= 0) return;
  label.layer = static_cast<int16_t>(layer);
  const TaskId copy = step_.graph.add_copy(gpu, Stream::kHostCopyOut, Category::kOffload,
                                           seconds(bytes / host_link_bytes_per_s_), label);
  step_.graph.depend(after, copy);
  offload_out_[offload_slot(label.microbatch, label.chunk, layer, part)] = copy;
}

TaskId StepGraphBuilder::emit_reload(int gpu, int layer, OffloadPart part, TaskLabel label) {
  const TaskId out = offload_out_[offload_slot(label.microbatch, label.chunk, layer, part)];
  if (out == kNoTask) return kNoTask;
  label.layer = static_cast<int16_t>(layer);
  const TaskId copy = step_.graph.add_copy(
      gpu, Stream::kHostCopyIn, Category::kReload,
      seconds(offload_bytes(gpu, layer, part, label.microbatch) / host_link_bytes_per_s_), label);
  step_.graph.depend(out, copy);
  if (reload_trigger_ != kNoTask) step_.graph.depend(reload_trigger_, copy);
  return copy;
}

TaskId StepGraphBuilder::emit_moe(int gpu, int layer, TaskLabel label, TaskId dep, LayerStage stage,
                                  bool defer_wgrad) {
  const bool bwd = label.phase == Phase::kBackward;
  const int j = moe_index_[layer];
  const LayerRouting& lr = routing_[j];
  const int sample =
      (label.microbatch + layout_.ep_group_index(gpu)) % static_cast<int>(lr.samples.size());
  const int position = layout_.coords(gpu).ep;
  const auto& expert = layer_costs_.expert_seconds(j, sample, position, bwd);
  const int chunks = parallel_.a2a_overlap_chunks;
  const uint32_t matrix = static_cast<uint32_t>(j * lr.samples.size() + sample);
  const double elt = hw::bytes_per_element(workload_.tensor_dtype());
  CollectiveDesc dispatch{CollectiveOp::kAllToAllV};
  dispatch.matrix = matrix;
  dispatch.fraction = 1.0 / chunks;
  // FP8 dispatch carries one FP32 scale per 128 elements (DeepSeek-V3); a
  // low-latency message adds a 16-byte header (DeepEP internode_ll.cu:
  // num_bytes_per_msg = sizeof(int4) + hidden + hidden / 128 * 4).
  dispatch.bytes = parallel_.dispatch_dtype == hw::DType::kFp8 ? model_.hidden * (1.0 + 4.0 / 128)
                                                               : model_.hidden * elt;
  if (parallel_.a2a_algo == coll::AllToAllAlgorithm::kLowLatency) dispatch.bytes += 16;
  CollectiveDesc combine = dispatch;
  combine.transpose = true;
  combine.bytes = model_.hidden * elt;
  CollectiveDesc etp_gather{CollectiveOp::kAllGather}, etp_scatter{CollectiveOp::kReduceScatter};
  etp_gather.bytes = etp_scatter.bytes =
      static_cast<double>(received_copies(lr.samples[sample], position)) * parallel_.etp *
      model_.hidden * elt / chunks;
  auto ep_comm = [&](bool towards_experts, TaskId d, uint8_t chunk) {
    TaskLabel l = label;
    l.chunk = chunk;
    // Forward: dispatch goes to the experts, combine comes back. Backward: the
    // combine's gradient goes to the experts, the dispatch's comes back.
    const Category c = (towards_experts != bwd) ? Category::kDispatch : Category::kCombine;
    return comm(gpu, Stream::kEpComm, c, kEp, towards_experts ? dispatch : combine, l, d);
  };
  if (stage != LayerStage::kWhole) {
    // One part of the layer (overlap modes; a2a_overlap_chunks is 1 there).
    const LayerKernelSeconds& k = layer_costs_.kernels();
    const bool recompute = bwd && parallel_.recompute == Recompute::kSelective;
    TaskLabel recompute_label = label, wgrad_label = label;
    recompute_label.phase = Phase::kRecompute;
    wgrad_label.phase = Phase::kWeightGrad;
    switch (stage) {
      case LayerStage::kPre:
        if (bwd) return compute(gpu, Category::kOther, k.unpermute_bwd, label, dep);
        step_.expert_tokens_per_gpu[gpu] += received_copies(lr.samples[sample], position);
        // Shared experts run before the router (submodule_pre_dispatch_forward).
        if (model_.shared_ffn > 0) compute(gpu, Category::kDense, k.shared_fwd, label, dep);
        return compute(gpu, Category::kOther, k.router_fwd, label, dep);
      case LayerStage::kFirstComm:
        return ep_comm(true, dep, 0);
      case LayerStage::kMlp: {
        TaskId in = dep;
        if (parallel_.etp > 1)
          in = comm(gpu, Stream::kTpComm, Category::kTpComm, kEtp, etp_gather, label, in);
        if (recompute) in = compute(gpu, Category::kExpert, expert[chunks], recompute_label, in);
        const double wgrad = bwd ? expert[2 * chunks] : 0;
        TaskId out = compute(gpu, Category::kExpert, expert[0] - wgrad, label, in);
        if (parallel_.etp > 1) {
          out = comm(gpu, Stream::kTpComm, Category::kTpComm, kEtp, etp_scatter, label, out);
        }
        if (bwd && !defer_wgrad) compute(gpu, Category::kExpert, wgrad, wgrad_label);
        return out;
      }
      case LayerStage::kSecondComm:
        return ep_comm(false, dep, 0);
      case LayerStage::kPost: {
        if (!bwd) return compute(gpu, Category::kOther, k.unpermute_fwd, label, dep);
        TaskId x = compute(gpu, Category::kOther, k.router_bwd, label, dep);
        if (model_.shared_ffn > 0) {
          x = compute(gpu, Category::kDense, k.shared_bwd - (defer_wgrad ? k.shared_wgrad : 0),
                      label, x);
        }
        return x;
      }
      case LayerStage::kWhole:
        break;
    }
  }

  if (label.phase == Phase::kForward)
    step_.expert_tokens_per_gpu[gpu] += received_copies(lr.samples[sample], position);
  const TaskId head = compute(
      gpu, Category::kOther,
      bwd ? layer_costs_.kernels().unpermute_bwd : layer_costs_.kernels().router_fwd, label, dep);
  const bool recompute_act = bwd && parallel_.recompute == Recompute::kSelective;
  TaskLabel recompute_label = label;
  recompute_label.phase = Phase::kRecompute;
  if (model_.shared_ffn > 0) {
    compute(gpu, Category::kDense,
            bwd ? layer_costs_.kernels().shared_bwd : layer_costs_.kernels().shared_fwd, label);
  }
  std::vector<TaskId> to_experts(chunks), expert_done(chunks), back(chunks);
  // EP stream order: to0, to1, back0, to2, back1, ...: each chunk's return
  // trip queues behind the next chunk's outbound one.
  auto emit_back = [&](int c) {
    back[c] = ep_comm(false, expert_done[c], static_cast<uint8_t>(c));
  };
  // Offloaded expert tensors come back before the experts' backward needs them.
  const TaskId mlp_reload = bwd ? reload(gpu, layer, kMlpPart, label) : kNoTask;
  for (int c = 0; c < chunks; ++c) {
    to_experts[c] = ep_comm(true, head, static_cast<uint8_t>(c));
    if (c >= 2) emit_back(c - 2);
    TaskLabel l = label;
    l.chunk = static_cast<uint8_t>(c);
    TaskId in = to_experts[c];
    if (parallel_.etp > 1) {
      in = comm(gpu, Stream::kTpComm, Category::kTpComm, kEtp, etp_gather, l, in);
    }
    const size_t first_expert_task = step_.graph.size();
    if (recompute_act) {
      TaskLabel r = recompute_label;
      r.chunk = l.chunk;
      in = compute(gpu, Category::kExpert, expert[chunks + c], r, in);
    }
    expert_done[c] = compute(gpu, Category::kExpert, expert[c], l, in);
    if (c == 0 && mlp_reload != kNoTask)
      step_.graph.depend(mlp_reload, static_cast<TaskId>(first_expert_task));
    if (c == chunks - 1 && bwd && offloads(layer, kMlpPart)) reload_trigger_ = expert_done[c];
    if (parallel_.etp > 1) {
      expert_done[c] =
          comm(gpu, Stream::kTpComm, Category::kTpComm, kEtp, etp_scatter, l, expert_done[c]);
    }
  }
  for (int c = std::max(0, chunks - 2); c < chunks; ++c) emit_back(c);
  // The tail waits for every chunk's return trip.
  const TaskId tail = step_.graph.add_compute(
      gpu, Category::kOther,
      seconds(bwd ? layer_costs_.kernels().router_bwd : layer_costs_.kernels().unpermute_fwd),
      label);
  for (TaskId b : back) step_.graph.depend(b, tail);
  last_compute_[gpu] = tail;
  return tail;
}

// ZeRO-3 (Megatron-FSDP's optim_grads_params; docs/user-guide/features/
// megatron_fsdp.md, "FSDP Module Hooks"): each layer is a unit whose
// parameters are gathered before every forward and every backward of every
// micro-batch and freed after it; a backward that recomputes the layer
// gathers once for both (resharded post-backward). Dense parameters come from
// the data-parallel group, routed experts' from the expert-data-parallel one.
// The gathers queue on their own stream into two buffers used in turn
// (Megatron-FSDP's double buffering, megatron_fsdp.md "Double Buffering": "no
// more than 2 FSDP units are un-sharded at any point"; its runtime schedule,
// docs/runtime_schedule.md, prefetches unit i+1 while unit i computes): a
// unit's gather waits until the unit two gathers back is done with the
// buffer. The layer's next task waits for the gather (pending_dep_; the
// stream finishes them in order, so waiting for the last is enough).
int StepGraphBuilder::gather_layer_params(int gpu, int layer, TaskLabel label) {
  if (parallel_.zero_stage != 3) return -1;
  if (label.phase == Phase::kBackward && parallel_.recompute == Recompute::kFull) return -1;
  const LayerParams params = layer_params(model_, parallel_, layer);
  const double bytes = hw::bytes_per_element(workload_.tensor_dtype());
  const bool experts = params.experts > 0 && parallel_.expert_dp() > 1;
  const bool dense = parallel_.dense_dp() > 1;
  if (!experts && !dense) return -1;
  const int buffer = param_buffer_next_;
  param_buffer_next_ ^= 1;
  const TaskId buffer_free = param_buffer_free_[buffer];
  TaskId last = kNoTask;
  if (experts) {
    CollectiveDesc d{CollectiveOp::kAllGather};
    d.bytes = params.experts * bytes;
    last = comm(gpu, Stream::kParamGather, Category::kDpComm, kEdp, d, label, buffer_free);
  }
  if (dense) {
    CollectiveDesc d{CollectiveOp::kAllGather};
    d.bytes = params.dense * bytes;
    last = comm(gpu, Stream::kParamGather, Category::kDpComm, kDp, d, label, buffer_free);
  }
  pending_dep_ = last;
  return buffer;
}

// A layer's pass with its ZeRO-3 parameters: gathered before it, released
// after it (a full recompute's unit stays gathered for the layer's backward,
// which follows it at once).
TaskId StepGraphBuilder::emit_layer(int gpu, int layer, TaskLabel label, TaskId dep) {
  label.layer = static_cast<int16_t>(layer);
  const int buffer = gather_layer_params(gpu, layer, label);
  if (buffer >= 0) open_param_buffer_ = buffer;
  // An MTP module wraps its layer in its entry (a recompute re-runs it too);
  // its head and loss run with the model's, on the last stage.
  const bool mtp = model_.is_mtp_layer(layer);
  const bool backward = label.phase == Phase::kBackward;
  const LayerKernelSeconds& k = layer_costs_.kernels();
  if (mtp && !backward) dep = compute(gpu, Category::kOther, k.mtp_entry_fwd, label, dep);
  TaskId x = emit_layer_kernels(gpu, layer, label, dep);
  if (mtp && backward) x = compute(gpu, Category::kOther, k.mtp_entry_bwd, label, x);
  if (label.phase != Phase::kRecompute) {
    release_param_buffer(open_param_buffer_, last_compute_[gpu]);
    open_param_buffer_ = -1;
  }
  return x;
}

TaskId StepGraphBuilder::emit_layer_kernels(int gpu, int layer, TaskLabel label, TaskId dep) {
  const bool bwd = label.phase == Phase::kBackward;
  const bool moe = moe_index_[layer] >= 0;
  if (!bwd) {
    TaskId x = tp_before(gpu, label, dep);
    x = emit_attention(gpu, label, x, false);
    offload_out(gpu, layer, kAttentionPart, label, x);
    x = tp_after(gpu, label, x);
    if (moe) {
      x = emit_moe(gpu, layer, label, x);
      offload_out(gpu, layer, kMlpPart, label, x);
      return x;
    }
    x = tp_before(gpu, label, x);
    x = compute(gpu, Category::kDense, layer_costs_.kernels().dense_fwd, label, x);
    return tp_after(gpu, label, x);
  }
  TaskId x = dep;
  const bool selective = selective_recompute(parallel_.recompute);
  TaskLabel r = label;
  r.phase = Phase::kRecompute;
  // Both norms (and MLA's up-projections) are re-run as the layer's backward
  // begins.
  if (selective) x = attention_recompute(gpu, r, x);
  if (moe) {
    // selective_moe: the MoE layer's forward (all-to-alls included) re-runs
    // from its input before its backward.
    if (parallel_.recompute == Recompute::kSelectiveMoe) x = emit_moe(gpu, layer, r, x);
    x = emit_moe(gpu, layer, label, x);
  } else {
    x = tp_before(gpu, label, x);
    if (selective) x = compute(gpu, Category::kDense, layer_costs_.kernels().dense_recompute, r, x);
    x = compute(gpu, Category::kDense, layer_costs_.kernels().dense_bwd, label, x);
    x = tp_after(gpu, label, x);
  }
  x = tp_before(gpu, label, x);
  const TaskId attention_reload = reload(gpu, layer, kAttentionPart, label);
  x = emit_attention(gpu, label, x, true, false, attention_reload);
  if (offloads(layer, kAttentionPart)) reload_trigger_ = x;
  return tp_after(gpu, label, x);
}

// The framework's host work between pipeline passes: the pass starts after it,
// and it starts only once the pass's input has arrived (it is the first task
// of the pass, which the pipeline receive gates).
void StepGraphBuilder::emit_pass_overhead(int gpu, TaskLabel label) {
  if (parallel_.pp == 1 || framework_.pipeline_pass_s <= 0) return;
  label.layer = -1;
  compute(gpu, Category::kFramework, framework_.pipeline_pass_s, label);
}

void StepGraphBuilder::emit_gpu(int gpu) {
  param_buffer_free_ = {kNoTask, kNoTask};
  param_buffer_next_ = 0;
  open_param_buffer_ = -1;
  if (parallel_.moe_a2a_overlap != MoeA2aOverlap::kNone) {
    emit_gpu_overlapped(gpu);
    return;
  }
  const RankCoords& rc = layout_.coords(gpu);
  const int v = parallel_.virtual_stages;
  const auto order = pipeline_order(parallel_.schedule, parallel_.pp, rc.pp, microbatches_, v);
  auto& passes = passes_[gpu];
  passes.assign(static_cast<size_t>(microbatches_) * v, PassTasks{});
  const int total_vstages = parallel_.pp * v;
  if (parallel_.offload_modules != 0) {
    offload_out_.assign(offload_slot(microbatches_, 0, 0, kAttentionPart), kNoTask);
    reload_trigger_ = kNoTask;
  }
  for (size_t i = 0; i < order.size(); ++i) {
    const PipelineItem& item = order[i];
    // A forward whose backward comes next keeps its last layer on the GPU.
    keep_last_layer_ = parallel_.offload_modules != 0 && i + 1 < order.size() &&
                       !order[i + 1].forward() && order[i + 1].microbatch == item.microbatch &&
                       order[i + 1].chunk == item.chunk;
    const int vstage = item.chunk * parallel_.pp + rc.pp;
    const LayerRange range = vstage_layers_[vstage];
    PassTasks& pt = passes[static_cast<size_t>(item.microbatch) * v + item.chunk];
    TaskLabel label;
    label.microbatch = static_cast<int16_t>(item.microbatch);
    label.chunk = static_cast<uint8_t>(item.chunk);
    const size_t first_task = step_.graph.size();
    if (item.forward()) {
      label.phase = Phase::kForward;
      pt.before_forward = last_compute_[gpu];
      emit_pass_overhead(gpu, label);
      TaskId x = kNoTask;
      if (vstage == 0)
        x = compute(gpu, Category::kOther, layer_costs_.kernels().embedding_fwd, label);
      for (int l = range.begin; l < range.end; ++l) x = emit_layer(gpu, l, label, x);
      if (vstage == total_vstages - 1)
        x = compute(gpu, Category::kOther, output_heads() * layer_costs_.kernels().head_fwd, label,
                    x);
      pt.forward_first = static_cast<TaskId>(first_task);
      pt.forward_last = x;
    } else {
      pt.before_backward = last_compute_[gpu];
      label.phase = Phase::kBackward;
      emit_pass_overhead(gpu, label);
      TaskId x = kNoTask;
      if (vstage == total_vstages - 1) {
        x = compute(gpu, Category::kOther, output_heads() * layer_costs_.kernels().head_bwd, label,
                    x);
        grads_ready(gpu, kOutputBucket, item.microbatch, x);
      }
      TaskLabel recompute_label = label;
      recompute_label.phase = Phase::kRecompute;
      for (int l = range.end - 1; l >= range.begin; --l) {
        // Full recompute checkpoints every layer (Megatron-Core's
        // --recompute-method uniform --recompute-num-layers 1,
        // transformer_block.py _checkpointed_forward): autograd re-runs a
        // layer's forward (all-to-alls included) from its stored input when
        // the backward reaches it.
        if (parallel_.recompute == Recompute::kFull) x = emit_layer(gpu, l, recompute_label, x);
        x = emit_layer(gpu, l, label, x);
        grads_ready(gpu, l, item.microbatch, x);
        // The module's entry embedded the shifted tokens: the stage's own
        // embedding copy is done with it (stage 0 uses its own).
        if (l == model_.model_layers() && vstage != 0)
          grads_ready(gpu, kMtpEmbeddingBucket, item.microbatch, x);
      }
      if (vstage == 0) {
        x = compute(gpu, Category::kOther, layer_costs_.kernels().embedding_bwd, label, x);
        grads_ready(gpu, kEmbeddingBucket, item.microbatch, x);
      }
      pt.backward_first = static_cast<TaskId>(first_task);
      pt.backward_last = x;
    }
  }
}

// ---------------------------------------------------------------------------
// moe_a2a_overlap "1f1b" and "dualpipe": the schedule's items, each a lone
// pass, an overlapped (forward, backward) pair or a weight-gradient pass.

StepGraphBuilder::PassCursor StepGraphBuilder::start_pass(int gpu, const PipelineItem& item) {
  const RankCoords& rc = layout_.coords(gpu);
  const int vstage = virtual_stage_of(parallel_, rc.pp, item.chunk);
  PassCursor pass;
  pass.gpu = gpu;
  pass.label.microbatch = static_cast<int16_t>(item.microbatch);
  pass.label.chunk = static_cast<uint8_t>(item.chunk);
  pass.label.phase = item.forward() ? Phase::kForward : Phase::kBackward;
  pass.backward = !item.forward();
  pass.defer_wgrad = item.kind == PassKind::kBackwardInput;
  pass.layers = vstage_layers_[vstage];
  pass.first_vstage = vstage == 0;
  pass.last_vstage = vstage == stage_count(parallel_) - 1;
  return pass;
}

// One part of one layer of `pass`, chained after the pass's previous part.
void StepGraphBuilder::emit_layer_stage(int layer, LayerStage stage, PassCursor& pass) {
  const int gpu = pass.gpu;
  TaskLabel label = pass.label;
  label.layer = static_cast<int16_t>(layer);
  const bool moe = moe_index_[layer] >= 0;
  const LayerKernelSeconds& k = layer_costs_.kernels();
  const size_t first_new = step_.graph.size();
  std::swap(pending_dep_, pass.pending);  // this pass's gather, not the other pass's
  if (stage == LayerStage::kPre) pass.param_buffer = gather_layer_params(gpu, layer, label);
  TaskId& x = pass.chain;
  TaskLabel recompute_label = label, wgrad_label = label;
  recompute_label.phase = Phase::kRecompute;
  wgrad_label.phase = Phase::kWeightGrad;
  const bool selective = pass.backward && parallel_.recompute == Recompute::kSelective;
  // An MTP module's entry before its layer, as in emit_layer.
  const bool mtp = model_.is_mtp_layer(layer);
  if (mtp && stage == LayerStage::kPre && !pass.backward)
    x = compute(gpu, Category::kOther, k.mtp_entry_fwd, label, x);
  if (moe && stage != LayerStage::kPre && stage != LayerStage::kPost) {
    x = emit_moe(gpu, layer, label, x, stage, pass.defer_wgrad);
  } else if (!pass.backward) {
    if (stage == LayerStage::kPre) {
      x = tp_before(gpu, label, x);
      x = emit_attention(gpu, label, x, false);
      x = tp_after(gpu, label, x);
      if (moe) x = emit_moe(gpu, layer, label, x, stage);
    } else if (stage == LayerStage::kMlp) {
      x = tp_before(gpu, label, x);
      x = compute(gpu, Category::kDense, k.dense_fwd, label, x);
      x = tp_after(gpu, label, x);
    } else if (moe) {
      x = emit_moe(gpu, layer, label, x, stage);  // kPost: unpermute
    }
  } else if (stage == LayerStage::kPre) {
    // Both norms (and MLA's up-projections) are re-run as the layer's
    // backward begins.
    if (selective) x = attention_recompute(gpu, recompute_label, x);
    if (moe) x = emit_moe(gpu, layer, label, x, stage);
  } else if (stage == LayerStage::kMlp) {
    x = tp_before(gpu, label, x);
    if (selective) x = compute(gpu, Category::kDense, k.dense_recompute, recompute_label, x);
    x = compute(gpu, Category::kDense, k.dense_bwd - k.dense_wgrad, label, x);
    if (!pass.defer_wgrad) compute(gpu, Category::kDense, k.dense_wgrad, wgrad_label);
    x = tp_after(gpu, label, x);
  } else if (stage == LayerStage::kPost) {
    if (moe) x = emit_moe(gpu, layer, label, x, stage, pass.defer_wgrad);
    x = tp_before(gpu, label, x);
    x = emit_attention(gpu, label, x, true, pass.defer_wgrad);
    x = tp_after(gpu, label, x);
    if (mtp) {
      const double wgrad = pass.defer_wgrad ? k.mtp_entry_wgrad : 0;
      x = compute(gpu, Category::kOther, k.mtp_entry_bwd - wgrad, label, x);
      // Its embedding's gradient (a scatter, never deferred) is done here.
      if (layer == model_.model_layers() && !pass.first_vstage)
        grads_done(gpu, kMtpEmbeddingBucket, x);
    }
    if (!pass.defer_wgrad) grads_done(gpu, layer, x);
  }
  if (stage == LayerStage::kPost) {
    release_param_buffer(pass.param_buffer, last_compute_[gpu]);
    pass.param_buffer = -1;
  }
  std::swap(pending_dep_, pass.pending);
  if (pass.first == kNoTask && step_.graph.size() > first_new)
    pass.first = static_cast<TaskId>(first_new);
}

void StepGraphBuilder::emit_layer_alone(int layer, PassCursor& pass) {
  for (LayerStage stage : {LayerStage::kPre, LayerStage::kFirstComm, LayerStage::kMlp,
                           LayerStage::kSecondComm, LayerStage::kPost}) {
    emit_layer_stage(layer, stage, pass);
  }
}

// Forward layer and backward layer side by side, in the issue order of
// Megatron-Core's TransformerLayerSchedulePlan.run
// (models/common/model_chunk_schedule_plan.py):
//   comm stream:    combine_bwd(B) | dispatch_fwd(F) -> dispatch_bwd(B) | combine_fwd(F)
//   compute stream: pre_fwd(F)     | mlp_bwd(B) -> mlp_wgrad(B) -> mlp_fwd(F) | post_bwd(B)
// Each communication overlaps the other micro-batch's compute: nothing links
// the two passes, so streams alone decide what runs beside what. DeepSeek's
// DualPipe overlapped chunks pair the same parts (DeepSeek-V3 report 3.2.1).
void StepGraphBuilder::emit_layer_pair(int forward_layer, PassCursor& forward, int backward_layer,
                                       PassCursor& backward) {
  emit_layer_stage(backward_layer, LayerStage::kPre, backward);
  emit_layer_stage(backward_layer, LayerStage::kFirstComm, backward);
  emit_layer_stage(forward_layer, LayerStage::kPre, forward);
  emit_layer_stage(forward_layer, LayerStage::kFirstComm, forward);
  emit_layer_stage(backward_layer, LayerStage::kMlp, backward);
  emit_layer_stage(backward_layer, LayerStage::kSecondComm, backward);
  emit_layer_stage(forward_layer, LayerStage::kMlp, forward);
  emit_layer_stage(forward_layer, LayerStage::kSecondComm, forward);
  emit_layer_stage(backward_layer, LayerStage::kPost, backward);
  emit_layer_stage(forward_layer, LayerStage::kPost, forward);
}

// A lone pass (one of the two null) or an overlapped pair, in the order of
// TransformerModelChunkSchedulePlan.run (model_chunk_schedule_plan.py):
// embedding forward, loss backward, forward layer i beside backward layer
// L-1-i, the backward's leftover layers, the forward's leftover layers, loss
// forward, embedding backward.
void StepGraphBuilder::emit_combined(int gpu, const PipelineItem* forward_item,
                                     const PipelineItem* backward_item) {
  const LayerKernelSeconds& k = layer_costs_.kernels();
  const int v = chunks_per_rank(parallel_);
  PassCursor forward, backward;
  const TaskId before = last_compute_[gpu];
  auto passes = [&](const PipelineItem& item) -> PassTasks& {
    return passes_[gpu][static_cast<size_t>(item.microbatch) * v + item.chunk];
  };
  // A pass's own tasks, emitted outside its layers.
  auto own = [&](PassCursor& pass, auto&& emit) {
    const size_t first_new = step_.graph.size();
    emit();
    if (pass.first == kNoTask && step_.graph.size() > first_new)
      pass.first = static_cast<TaskId>(first_new);
  };
  if (forward_item) {
    forward = start_pass(gpu, *forward_item);
    own(forward, [&] {
      emit_pass_overhead(gpu, forward.label);
      if (forward.first_vstage)
        forward.chain = compute(gpu, Category::kOther, k.embedding_fwd, forward.label);
    });
  }
  if (backward_item) {
    backward = start_pass(gpu, *backward_item);
    own(backward, [&] {
      emit_pass_overhead(gpu, backward.label);
      if (backward.last_vstage) {
        const double wgrad = backward.defer_wgrad ? k.head_wgrad : 0;
        backward.chain = compute(gpu, Category::kOther, output_heads() * (k.head_bwd - wgrad),
                                 backward.label, backward.chain);
        if (!backward.defer_wgrad) grads_done(gpu, kOutputBucket, backward.chain);
      }
    });
  }
  const int forward_layers = forward_item ? forward.layers.end - forward.layers.begin : 0;
  const int backward_layers = backward_item ? backward.layers.end - backward.layers.begin : 0;
  const int pairs = std::min(forward_layers, backward_layers);
  for (int i = 0; i < pairs; ++i) {
    emit_layer_pair(forward.layers.begin + i, forward, backward.layers.end - 1 - i, backward);
  }
  for (int i = pairs; i < backward_layers; ++i)
    emit_layer_alone(backward.layers.end - 1 - i, backward);
  for (int i = pairs; i < forward_layers; ++i) emit_layer_alone(forward.layers.begin + i, forward);
  if (forward_item) {
    own(forward, [&] {
      if (forward.last_vstage)
        forward.chain = compute(gpu, Category::kOther, output_heads() * k.head_fwd, forward.label,
                                forward.chain);
    });
    PassTasks& pt = passes(*forward_item);
    pt.before_forward = before;
    pt.forward_first = forward.first;
    pt.forward_last = forward.chain;
  }
  if (backward_item) {
    own(backward, [&] {
      if (backward.first_vstage) {
        backward.chain =
            compute(gpu, Category::kOther, k.embedding_bwd, backward.label, backward.chain);
        grads_done(gpu, kEmbeddingBucket, backward.chain);
      }
    });
    PassTasks& pt = passes(*backward_item);
    pt.before_backward = before;
    pt.backward_first = backward.first;
    pt.backward_last = backward.chain;
  }
}

// A zero-bubble W pass: the weight-gradient GEMMs its kBackwardInput left,
// layer by layer in backward order.
void StepGraphBuilder::emit_weight_grad(int gpu, const PipelineItem& item) {
  const LayerKernelSeconds& k = layer_costs_.kernels();
  PassCursor pass = start_pass(gpu, item);
  TaskLabel label = pass.label;
  label.phase = Phase::kWeightGrad;
  if (pass.last_vstage) {
    grads_done(gpu, kOutputBucket,
               compute(gpu, Category::kOther, output_heads() * k.head_wgrad, label));
  }
  for (int l = pass.layers.end - 1; l >= pass.layers.begin; --l) {
    label.layer = static_cast<int16_t>(l);
    if (model_.is_mtp_layer(l)) compute(gpu, Category::kOther, k.mtp_entry_wgrad, label);
    const int j = moe_index_[l];
    if (j >= 0) {
      const LayerRouting& lr = routing_[j];
      const int sample =
          (item.microbatch + layout_.ep_group_index(gpu)) % static_cast<int>(lr.samples.size());
      const auto& expert = layer_costs_.expert_seconds(j, sample, layout_.coords(gpu).ep, true);
      compute(gpu, Category::kExpert, expert[2 * parallel_.a2a_overlap_chunks], label);
      if (model_.shared_ffn > 0) compute(gpu, Category::kDense, k.shared_wgrad, label);
    } else {
      compute(gpu, Category::kDense, k.dense_wgrad, label);
    }
    grads_done(gpu, l, compute(gpu, Category::kAttention, k.attention_wgrad, label));
  }
}

void StepGraphBuilder::emit_gpu_overlapped(int gpu) {
  if (parallel_.a2a_overlap_chunks != 1 || parallel_.recompute == Recompute::kFull) {
    throw std::logic_error(
        "build_training_step: moe_a2a_overlap needs a2a_overlap_chunks = 1 "
        "and no full recompute");
  }
  const int v = chunks_per_rank(parallel_);
  passes_[gpu].assign(static_cast<size_t>(microbatches_) * v, PassTasks{});
  bucket_grads_done_.assign(model_.layers + kExtraBuckets, kNoTask);
  const auto order = schedule_order(parallel_, layout_.coords(gpu).pp, microbatches_);
  for (size_t i = 0; i < order.size(); ++i) {
    const PipelineItem& item = order[i];
    if (item.paired_with_next && i + 1 < order.size()) {
      emit_combined(gpu, &item, &order[i + 1]);
      ++i;
    } else if (item.kind == PassKind::kWeightGrad) {
      emit_weight_grad(gpu, item);
    } else if (item.forward()) {
      emit_combined(gpu, &item, nullptr);
    } else {
      emit_combined(gpu, nullptr, &item);
    }
  }
  // Gradient buckets in the order they finish.
  std::vector<std::pair<TaskId, int>>& ready = grads_ready_[gpu];
  if (!reduces_every_microbatch()) {
    for (int b = -kExtraBuckets; b < model_.layers; ++b) {
      const TaskId done = bucket_grads_done_[bucket_slot(b)];
      if (done != kNoTask) ready.push_back({done, b});
    }
  }
  std::sort(ready.begin(), ready.end());
}

// Activations (forward) and their gradients (backward) between consecutive
// virtual stages: a two-participant transfer. The receiving side joins only
// once its own previous work is done, so waiting for a slow upstream stage
// shows as pipeline bubble and only the transfer itself as communication.
void StepGraphBuilder::emit_pipeline_transfers() {
  const int v = chunks_per_rank(parallel_), total = stage_count(parallel_);
  if (total == 1) return;
  const bool dualpipe = parallel_.moe_a2a_overlap == MoeA2aOverlap::kDualPipe;
  const double bytes = static_cast<double>(tokens_per_microbatch_) * model_.hidden *
                       hw::bytes_per_element(workload_.tensor_dtype()) /
                       (parallel_.sequence_parallel ? parallel_.tp : 1);
  std::map<std::pair<int, int>, uint32_t> p2p_groups;
  auto group_of = [&](int a, int b) {
    auto [it, fresh] = p2p_groups.emplace(std::make_pair(a, b), 0);
    if (fresh) {
      it->second = static_cast<uint32_t>(step_.groups.size());
      step_.groups.push_back({a, b});
    }
    return it->second;
  };
  for (int gpu = 0; gpu < parallel_.gpus(); ++gpu) {
    const RankCoords& rc = layout_.coords(gpu);
    for (int mb = 0; mb < microbatches_; ++mb) {
      for (int chunk = 0; chunk < v; ++chunk) {
        // DualPipe: a micro-batch flows through one direction only.
        const int direction = dualpipe_direction(parallel_, mb, microbatches_);
        if (direction >= 0 && direction != chunk) continue;
        const int vstage = virtual_stage_of(parallel_, rc.pp, chunk);
        const PassTasks& me = passes_[gpu][static_cast<size_t>(mb) * v + chunk];
        for (int dir = 0; dir < 2; ++dir) {
          const bool forward = dir == 0;
          const int from_vstage = forward ? vstage - 1 : vstage + 1;
          if (from_vstage < 0 || from_vstage >= total) continue;
          // Past the MTP modules' stage, their hidden states travel with the
          // model's (and their gradients back).
          const int boundary = std::min(vstage, from_vstage);
          const bool with_mtp = mtp_vstage_ >= 0 && boundary >= mtp_vstage_;
          // DualPipe's reverse direction runs virtual stage s on rank pp-1-s.
          const int from_stage = !dualpipe    ? from_vstage % parallel_.pp
                                 : chunk == 0 ? from_vstage
                                              : parallel_.pp - 1 - from_vstage;
          const int from_chunk = dualpipe ? chunk : from_vstage / parallel_.pp;
          const int src = layout_.rank(rc.tp, rc.cp, rc.dp, from_stage);
          const PassTasks& them = passes_[src][static_cast<size_t>(mb) * v + from_chunk];
          CollectiveDesc d{CollectiveOp::kSendRecv};
          d.bytes = with_mtp ? bytes * output_heads() : bytes;
          d.group = group_of(src, gpu);
          const CollectiveId c =
              step_.graph.add_collective(static_cast<uint32_t>(step_.collectives.size()));
          step_.collectives.push_back(d);
          TaskLabel label;
          label.microbatch = static_cast<int16_t>(mb);
          label.chunk = static_cast<uint8_t>(chunk);
          label.phase = forward ? Phase::kForward : Phase::kBackward;
          const TaskId send = step_.graph.add_comm(src, Stream::kNone, Category::kPpComm, c, label);
          const TaskId recv = step_.graph.add_comm(gpu, Stream::kNone, Category::kPpComm, c, label);
          step_.graph.depend(forward ? them.forward_last : them.backward_last, send);
          step_.graph.depend(forward ? them.forward_last : them.backward_last, recv);
          const TaskId prev = forward ? me.before_forward : me.before_backward;
          if (prev != kNoTask) step_.graph.depend(prev, recv);
          step_.graph.depend(recv, forward ? me.forward_first : me.backward_first);
        }
      }
    }
  }
}

LayerParams StepGraphBuilder::bucket_params(int bucket) const {
  switch (bucket) {
    case kEmbeddingBucket:
    case kMtpEmbeddingBucket:
      return {model_.embedding_params / parallel_.tp, 0};
    case kOutputBucket:
      return {model_.output_params / parallel_.tp, 0};
    default:
      break;
  }
  LayerParams params = layer_params(model_, parallel_, bucket);
  if (model_.is_mtp_layer(bucket)) params.dense += model_.mtp_module_params / parallel_.tp;
  return params;
}

// Gradient reduction over the data-parallel groups (dense parameters over dp,
// expert parameters over expert-dp), one bucket per layer and one each for
// the embedding (and an MTP stage's copy) and the output layer, issued as
// each bucket's last backward finishes (or all after the backward pass;
// ZeRO-2/3: after each of its backwards); then, with a tied output layer or
// MTP, the embedding gradients' sum over the first and last pipeline ranks
// (Megatron-Core finalize_model_grads: after finish_grad_sync, the whole
// FP32 main_grad); then the optimizer step on this GPU's shard.
void StepGraphBuilder::emit_data_parallel(int gpu) {
  const RankCoords& rc = layout_.coords(gpu);
  const bool reduce_scatter = parallel_.zero_stage >= 1;
  const double grad_bytes = 4;  // gradients are accumulated and reduced in FP32
  TaskLabel label;
  label.phase = Phase::kStep;
  std::vector<TaskId> reductions;
  const TaskId end_of_backward = last_compute_[gpu];
  for (const auto& [task, bucket] : grads_ready_[gpu]) {
    label.layer = static_cast<int16_t>(std::max(bucket, -1));
    const auto [dense, experts] = bucket_params(bucket);
    // Megatron-FSDP always overlaps its reduce-scatters with the backward.
    const bool overlapped = parallel_.overlap_grad_reduce || reduces_every_microbatch();
    const TaskId dep = overlapped ? task : end_of_backward;
    if (dense > 0 && parallel_.dense_dp() > 1) {
      CollectiveDesc d{reduce_scatter ? CollectiveOp::kReduceScatter : CollectiveOp::kAllReduce};
      d.bytes = dense * grad_bytes;
      reductions.push_back(comm(gpu, Stream::kDpComm, Category::kDpComm, kDp, d, label, dep));
    }
    if (experts > 0 && parallel_.expert_dp() > 1) {
      CollectiveDesc d{reduce_scatter ? CollectiveOp::kReduceScatter : CollectiveOp::kAllReduce};
      d.bytes = experts * grad_bytes;
      reductions.push_back(comm(gpu, Stream::kDpComm, Category::kDpComm, kEdp, d, label, dep));
    }
  }
  label.layer = -1;
  const bool first = rc.pp == 0, last = rc.pp == parallel_.pp - 1;
  if (sums_embedding_grads() && (first || last)) {
    CollectiveDesc d{CollectiveOp::kAllReduce};
    d.bytes = model_.embedding_params / parallel_.tp * grad_bytes;
    const TaskId sum =
        comm(gpu, Stream::kDpComm, Category::kDpComm, kEmbedding, d, label, end_of_backward);
    for (TaskId r : reductions) step_.graph.depend(r, sum);
    reductions.push_back(sum);
  }
  // Adam's step on this GPU's shard (AdamPrecision::step_bytes per parameter).
  const LocalParams local = local_params(model_, parallel_, rc.pp);
  const double shard_params =
      reduce_scatter ? local.dense / parallel_.dense_dp() + local.experts / parallel_.expert_dp()
                     : local.dense + local.experts;
  if (parallel_.moe_a2a_overlap == MoeA2aOverlap::kDualPipe) {
    // DualPipe: ranks r and pp-1-r hold copies of the same two stages, whose
    // gradients are summed (DualPipe examples/example_dualpipe.py adds the
    // mirror rank's gradients). Summing commutes with the data-parallel
    // reduction, so the sum runs on the reduced shard, after the per-layer
    // reductions that overlap the backward: one all-reduce of FP32 shards.
    CollectiveDesc d{CollectiveOp::kAllReduce};
    d.bytes = shard_params * grad_bytes;
    const TaskId sum =
        comm(gpu, Stream::kDpComm, Category::kDpComm, kMirror, d, label, end_of_backward);
    for (TaskId r : reductions) step_.graph.depend(r, sum);
    reductions.push_back(sum);
  }
  const double optimizer_bytes = shard_params * parallel_.adam.step_bytes(workload_.compute_dtype);
  const TaskId opt = step_.graph.add_compute(
      gpu, Category::kOptimizer, seconds(cost_.memory_bound_seconds(optimizer_bytes)), label);
  for (TaskId r : reductions) step_.graph.depend(r, opt);
  last_compute_[gpu] = opt;
  if (reduce_scatter && parallel_.zero_stage < 3 && !parallel_.overlap_param_gather) {
    // Updated parameter shards are gathered before the next step can start.
    CollectiveDesc d{CollectiveOp::kAllGather};
    d.bytes = local.dense * hw::bytes_per_element(workload_.tensor_dtype());
    if (parallel_.dense_dp() > 1) comm(gpu, Stream::kDpComm, Category::kDpComm, kDp, d, label, opt);
    d.bytes = local.experts * hw::bytes_per_element(workload_.tensor_dtype());
    if (parallel_.expert_dp() > 1)
      comm(gpu, Stream::kDpComm, Category::kDpComm, kEdp, d, label, opt);
  }
}

StepGraph StepGraphBuilder::build() {
  microbatches_ = static_cast<int>(workload_.microbatches(parallel_));
  // Per context-parallel rank: its seq_len / cp tokens of each sequence.
  tokens_per_microbatch_ = workload_.seq_len / parallel_.cp * parallel_.micro_batch_size;
  if (parallel_.offload_modules != 0) {
    if (host_link_bytes_per_s_ <= 0) {
      throw std::logic_error(
          "build_training_step: activation offload needs the host link bandwidth");
    }
    for (int l = 0; l < model_.layers; ++l)
      saved_by_layer_.push_back(layer_saved_bytes(model_, parallel_, workload_.compute_dtype, l));
  }
  step_.microbatches = microbatches_;
  step_.graph = TaskGraph(parallel_.gpus());
  vstage_layers_ = stage_layers(model_, parallel_);
  mtp_vstage_ = mtp_stage(model_, vstage_layers_);
  if (parallel_.moe_a2a_overlap != MoeA2aOverlap::kNone) {
    // Overlapped communication takes SMs from the compute beside it.
    if (gpu_sms_ <= parallel_.a2a_comm_sms) {
      throw std::logic_error(
          "build_training_step: moe_a2a_overlap needs the GPU's SM count "
          "above a2a_comm_sms");
    }
    step_.graph.set_comm_sms(gpu_sms_, parallel_.a2a_comm_sms);
  }
  moe_index_.assign(model_.layers, -1);
  int j = 0;
  for (int l = 0; l < model_.layers; ++l) {
    if (model_.moe_layer[l]) moe_index_[l] = j++;
  }
  if (static_cast<size_t>(j) != routing_.size()) {
    throw std::logic_error("build_training_step: routing has the wrong number of MoE layers");
  }
  // Node-deduplicated (hierarchical) dispatch sends a token once per
  // destination rank and node; direct and low-latency ones a copy per expert.
  const bool dedup = parallel_.a2a_algo == coll::AllToAllAlgorithm::kHierarchical;
  for (const LayerRouting& lr : routing_) {
    for (const RoutingSample& rs : lr.samples) {
      StepGraph::Dispatch d;
      d.copies = rs.pair_tokens;
      if (dedup) {
        d.rank_tokens = rs.rank_tokens;
        d.node_tokens = rs.node_tokens;
      }
      step_.dispatches.push_back(std::move(d));
    }
  }
  if (parallel_.cp > 1) {
    // A ring step: context-parallel rank i sends one block to rank i + 1.
    StepGraph::Dispatch ring;
    const int cp = parallel_.cp;
    ring.copies.assign(static_cast<size_t>(cp) * cp, 0);
    for (int i = 0; i < cp; ++i) ring.copies[static_cast<size_t>(i) * cp + (i + 1) % cp] = 1;
    ring_matrix_ = static_cast<uint32_t>(step_.dispatches.size());
    step_.dispatches.push_back(std::move(ring));
  }
  intern_groups();
  passes_.resize(parallel_.gpus());
  step_.expert_tokens_per_gpu.assign(parallel_.gpus(), 0);
  last_compute_.assign(parallel_.gpus(), kNoTask);
  grads_ready_.resize(parallel_.gpus());
  {
    // Reserving avoids regrowing arrays of many millions of tasks.
    const size_t estimate =
        static_cast<size_t>(estimated_step_tasks(model_, parallel_, workload_) * 1.1);
    step_.graph.reserve(estimate, estimate * 3 / 2);
  }
  for (int g = 0; g < parallel_.gpus(); ++g) emit_gpu(g);
  for (int g = 0; g < parallel_.gpus(); ++g) emit_data_parallel(g);
  emit_pipeline_transfers();
  step_.graph.finalize();
  return std::move(step_);
}

}  // namespace

double estimated_step_tasks(const ModelShape& model, const ParallelConfig& parallel,
                            const TrainingWorkload& workload) {
  const double layers_per_gpu = static_cast<double>(model.layers) / parallel.pp;
  // Context parallelism adds cp ring steps and transfers per attention block
  // and direction; selective_moe a forward MoE layer per backward one;
  // offload two copies each way.
  const double ring = parallel.cp > 1 ? 2.0 * parallel.cp + 1 : 0;
  const double moe_recompute = parallel.recompute == Recompute::kSelectiveMoe ? 2.5 : 0;
  const double copies = parallel.offload_modules != 0 ? 2 : 0;
  // ZeRO-2/3: two reduce-scatters per layer and backward; ZeRO-3 two gathers
  // per layer and direction.
  const double sharded = parallel.zero_stage >= 3 ? 3 : parallel.zero_stage == 2 ? 1 : 0;
  const double per_gpu =
      2.0 * static_cast<double>(workload.microbatches(parallel)) * layers_per_gpu *
          (8 + 3 * parallel.a2a_overlap_chunks + ring + moe_recompute + copies + sharded) +
      16;
  return per_gpu * parallel.gpus();
}

StepGraph build_training_step(const ModelShape& model, const ParallelConfig& parallel,
                              const TrainingWorkload& workload,
                              const std::vector<LayerRouting>& routing,
                              const hw::ComputeCostModel& cost, const FrameworkOverheads& framework,
                              int gpu_sms, double host_link_bytes_per_s) {
  StepGraphBuilder b(model, parallel, workload, routing, cost, framework, gpu_sms,
                     host_link_bytes_per_s);
  return b.build();
}

}  // namespace moesim::exec
