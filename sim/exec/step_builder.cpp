#include "sim/exec/step_builder.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include "sim/exec/pipeline_schedule.h"

namespace moesim::exec {
namespace {

constexpr uint32_t kNoTask = TaskGraph::kNoTask;

SimTime seconds(double s) {
  return SimTime::from_seconds(std::max(0.0, s));
}

// Per-micro-batch kernel costs of one layer on one GPU (seconds).
struct BlockCosts {
  double attention_fwd = 0, attention_bwd = 0;
  // Selective recompute (Megatron-Core's --recompute-modules layernorm,
  // mlp/moe_act): the outputs of the two norms and of the FFN activation
  // functions are not kept and are re-computed in backward. Routed experts'
  // activations are sized per rank (expert_seconds()).
  double norm_recompute = 0;
  double dense_act_recompute = 0, shared_act_recompute = 0;
  double dense_fwd = 0, dense_bwd = 0;
  double shared_fwd = 0, shared_bwd = 0;
  double router_fwd = 0, router_bwd = 0;        // router GEMM, softmax/top-k, permutation
  double unpermute_fwd = 0, unpermute_bwd = 0;  // un-permute and weighted combine
  double embedding_fwd = 0, embedding_bwd = 0;
  double head_fwd = 0, head_bwd = 0;  // output projection + cross-entropy
};

enum GroupKind { kTp, kEp, kEtp, kDp, kEdp, kGroupKinds };

class Builder {
 public:
  Builder(const ModelShape& model, const ParallelConfig& parallel, const TrainingWorkload& workload,
          const std::vector<LayerRouting>& routing, const hw::ComputeCostModel& cost,
          const FrameworkOverheads& framework)
      : m_(model),
        p_(parallel),
        w_(workload),
        routing_(routing),
        cost_(cost),
        framework_(framework),
        layout_(parallel) {}

  StepGraph build();

 private:
  void compute_block_costs();
  double ffn_seconds(int64_t tokens, int64_t width, bool backward) const;
  double ffn_activation_seconds(int64_t tokens, int64_t width) const;
  const std::vector<double>& expert_seconds(int moe_index, int sample, int position, bool backward);
  void intern_groups();
  CollectiveId collective(GroupKind kind, int gpu, CollectiveDesc desc);
  TaskId compute(int gpu, Category c, double s, TaskLabel label, TaskId dep = kNoTask);
  TaskId comm(int gpu, Stream stream, Category c, GroupKind kind, CollectiveDesc desc,
              TaskLabel label, TaskId dep = kNoTask);
  // TP collective around a block: all-reduce, or with sequence parallelism an
  // all-gather before and a reduce-scatter after (same bytes in total).
  TaskId tp_before(int gpu, TaskLabel label, TaskId dep);
  TaskId tp_after(int gpu, TaskLabel label, TaskId dep);
  TaskId emit_layer(int gpu, int layer, TaskLabel label, TaskId dep);
  TaskId emit_moe(int gpu, int layer, TaskLabel label, TaskId dep);
  void emit_pass_overhead(int gpu, TaskLabel label);
  void emit_gpu(int gpu);
  void emit_pipeline_transfers();
  void emit_data_parallel(int gpu);

  const ModelShape& m_;
  const ParallelConfig& p_;
  const TrainingWorkload& w_;
  const std::vector<LayerRouting>& routing_;
  const hw::ComputeCostModel& cost_;
  const FrameworkOverheads& framework_;
  RankLayout layout_;
  StepGraph out_;
  BlockCosts bc_;
  int64_t tokens_ = 0;      // tokens per micro-batch per data-parallel rank
  int64_t moe_tokens_ = 0;  // tokens entering the MoE block per GPU (sequence-parallel shard)
  int microbatches_ = 0;
  std::vector<LayerRange> vstage_layers_;
  std::vector<int> moe_index_;  // layer -> MoE ordinal (-1 for dense layers)

  std::array<std::vector<uint32_t>, kGroupKinds> group_of_;  // [kind][gpu] -> group id
  std::vector<std::vector<CollectiveId>> group_collectives_;
  std::array<std::vector<uint32_t>, kGroupKinds> issued_;  // [kind][gpu] -> collectives so far
  // expert_seconds() results: [expert_cache_offset_[moe layer] + (sample * ep
  // + position) * 2 + backward]; empty until first computed.
  std::vector<std::vector<double>> expert_cache_;
  std::vector<size_t> expert_cache_offset_;

  // Per GPU and (micro-batch, chunk): first/last task of its forward and
  // backward pass, and the compute task before each pass (for p2p receives).
  struct PassTasks {
    TaskId f_first = kNoTask, f_last = kNoTask, f_prev = kNoTask;
    TaskId b_first = kNoTask, b_last = kNoTask, b_prev = kNoTask;
  };
  std::vector<std::vector<PassTasks>> passes_;
  std::vector<TaskId> last_compute_;                              // per GPU, while emitting
  std::vector<std::vector<std::pair<TaskId, int>>> grads_ready_;  // per GPU: (task, layer)
  std::vector<std::vector<char>> param_gathered_;                 // ZeRO-3: [gpu][layer*2+bwd]
  // A dependency for the next task emitted (the ZeRO-3 parameter gather the
  // layer's first kernel waits for).
  TaskId pending_dep_ = kNoTask;
  void take_pending_dep(TaskId id) {
    if (pending_dep_ != kNoTask) out_.graph.depend(pending_dep_, id);
    pending_dep_ = kNoTask;
  }
};

// The activation function between the FFN's GEMMs (SwiGLU reads gate and up,
// writes their product): memory-bound.
double Builder::ffn_activation_seconds(int64_t tokens, int64_t width) const {
  const int64_t w = width / p_.tp;
  const double elt = hw::bytes_per_element(w_.compute_dtype);
  return cost_.memory_bound_seconds(tokens * (m_.swiglu ? 3.0 : 2.0) * w * elt);
}

double Builder::ffn_seconds(int64_t tokens, int64_t width, bool backward) const {
  const hw::DType dt = w_.compute_dtype;
  const int64_t w = width / p_.tp;
  double s = ffn_activation_seconds(tokens, width);
  if (m_.swiglu) {
    s += cost_.gemm_seconds(tokens, 2 * w, m_.hidden, dt);
  } else {
    s += cost_.gemm_seconds(tokens, w, m_.hidden, dt);
  }
  s += cost_.gemm_seconds(tokens, m_.hidden, w, dt);
  // Backward: data gradient and weight gradient GEMMs, each as costly as the
  // forward GEMM, plus the activation's backward.
  return backward ? 2 * s : s;
}

void Builder::compute_block_costs() {
  const hw::DType dt = w_.compute_dtype;
  const double elt = hw::bytes_per_element(dt);
  const int64_t T = tokens_, h = m_.hidden;
  const int t = p_.tp;
  const int64_t T_norm = p_.sequence_parallel ? T / t : T;
  const double norm = 2 * cost_.memory_bound_seconds(2.0 * T_norm * h * elt);  // two norms
  double proj = 0, core_flops = 0, core_bytes = 0;
  const double causal = 0.5;  // causal masking halves the score and value products
  const double seq = static_cast<double>(w_.seq_len);
  if (m_.is_mla()) {
    const int64_t qk = m_.qk_nope_head_dim + m_.qk_rope_head_dim;
    proj += m_.q_lora_rank > 0 ? cost_.gemm_seconds(T, m_.q_lora_rank, h, dt) +
                                     cost_.gemm_seconds(T, m_.heads * qk / t, m_.q_lora_rank, dt)
                               : cost_.gemm_seconds(T, m_.heads * qk / t, h, dt);
    proj += cost_.gemm_seconds(T, m_.kv_lora_rank + m_.qk_rope_head_dim, h, dt);
    proj += cost_.gemm_seconds(T, m_.heads * (m_.qk_nope_head_dim + m_.v_head_dim) / t,
                               m_.kv_lora_rank, dt);
    proj += cost_.gemm_seconds(T, h, m_.heads * m_.v_head_dim / t, dt);
    core_flops = 2.0 * T * seq * causal * m_.heads / t * (qk + m_.v_head_dim);
    core_bytes = T * elt * m_.heads / t * (2.0 * qk + 2.0 * m_.v_head_dim);
  } else {
    const int64_t hd = m_.head_dim;
    proj += cost_.gemm_seconds(T, (m_.heads + 2 * m_.kv_heads) * hd / t, h, dt);
    proj += cost_.gemm_seconds(T, h, m_.heads * hd / t, dt);
    core_flops = 4.0 * T * seq * causal * m_.heads / t * hd;
    core_bytes = T * elt * hd / t * (2.0 * m_.heads + 2.0 * m_.kv_heads);
  }
  const double core = cost_.fused_kernel_seconds(core_flops, core_bytes, dt);
  // Flash-attention backward does about 2.5x the forward's FLOPs (it recomputes
  // the scores): 5 matmuls against 2.
  const double core_bwd = cost_.fused_kernel_seconds(2.5 * core_flops, 2.5 * core_bytes, dt);
  bc_.attention_fwd = proj + core + norm;
  bc_.attention_bwd = 2 * proj + core_bwd + 2 * norm;
  bc_.norm_recompute = norm;
  bc_.dense_act_recompute = ffn_activation_seconds(T, m_.dense_ffn);
  bc_.dense_fwd = ffn_seconds(T, m_.dense_ffn, false);
  bc_.dense_bwd = ffn_seconds(T, m_.dense_ffn, true);
  if (m_.shared_ffn > 0) {
    bc_.shared_fwd = ffn_seconds(T, m_.shared_ffn, false);
    bc_.shared_bwd = ffn_seconds(T, m_.shared_ffn, true);
    bc_.shared_act_recompute = ffn_activation_seconds(T, m_.shared_ffn);
  }
  const int64_t Tm = moe_tokens_;
  const double copies = static_cast<double>(Tm) * m_.top_k;
  bc_.router_fwd = cost_.gemm_seconds(Tm, m_.experts, h, dt) +
                   cost_.memory_bound_seconds(Tm * m_.experts * 4.0 * 2) +  // softmax + top-k
                   cost_.memory_bound_seconds(2 * copies * h * elt);        // permute
  bc_.router_bwd = 2 * bc_.router_fwd;
  bc_.unpermute_fwd = cost_.memory_bound_seconds((2 * copies + Tm) * h * elt);
  bc_.unpermute_bwd = 2 * bc_.unpermute_fwd;
  bc_.embedding_fwd = cost_.memory_bound_seconds(2.0 * T_norm * h * elt);
  bc_.embedding_bwd = 2 * bc_.embedding_fwd;
  bc_.head_fwd = cost_.gemm_seconds(T, m_.vocab / t, h, dt) +
                 cost_.memory_bound_seconds(T * static_cast<double>(m_.vocab) / t * 4 * 2);
  bc_.head_bwd = 2 * bc_.head_fwd;
}

// Routed-expert time per overlap chunk for the EP rank at `position`:
// two grouped GEMMs (gate+up fused, then down) sized by the tokens each local
// expert received, and the activation between them. With expert tensor
// parallelism each GPU holds 1/etp of every local expert and processes the
// tokens gathered from its etp peers. Entries [chunks, 2 chunks) hold each
// chunk's (forward) activation alone: what selective recompute re-runs.
const std::vector<double>& Builder::expert_seconds(int moe_index, int sample, int position,
                                                   bool backward) {
  std::vector<double>& cached =
      expert_cache_[expert_cache_offset_[moe_index] +
                    (static_cast<size_t>(sample) * p_.ep + position) * 2 + (backward ? 1 : 0)];
  if (!cached.empty()) return cached;
  const RoutingSample& rs = routing_[moe_index].samples[sample];
  const int local = rs.local_experts;
  const int chunks = p_.a2a_overlap_chunks;
  const hw::DType dt = w_.compute_dtype;
  const int64_t f = m_.expert_ffn / p_.etp;
  std::vector<double> per_chunk(2 * static_cast<size_t>(chunks));
  std::vector<int64_t> m(local);
  for (int c = 0; c < chunks; ++c) {
    for (int e = 0; e < local; ++e) {
      const int64_t total = rs.expert_tokens[static_cast<size_t>(position) * local + e] * p_.etp;
      // Chunk c gets an even share of each expert's tokens (the remainder to
      // the first chunks).
      m[e] = total / chunks + (c < total % chunks ? 1 : 0);
    }
    int64_t routed = 0;
    for (int64_t x : m) routed += x;
    const int64_t up = m_.swiglu ? 2 * f : f;
    const double act = cost_.memory_bound_seconds(routed * (up + f) * hw::bytes_per_element(dt));
    const double s = cost_.grouped_gemm_seconds(m, up, m_.hidden, dt) +
                     cost_.grouped_gemm_seconds(m, m_.hidden, f, dt) + act;
    per_chunk[c] = backward ? 2 * s : s;
    per_chunk[chunks + c] = act;
  }
  cached = std::move(per_chunk);
  return cached;
}

void Builder::intern_groups() {
  std::map<std::vector<int>, uint32_t> ids;
  for (int k = 0; k < kGroupKinds; ++k) {
    group_of_[k].resize(p_.gpus());
    issued_[k].assign(p_.gpus(), 0);
    for (int g = 0; g < p_.gpus(); ++g) {
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
      }
      // Groups of different kinds with the same members are distinct (their
      // collectives are queued independently).
      members.push_back(-1 - k);
      auto [it, fresh] = ids.emplace(members, static_cast<uint32_t>(out_.groups.size()));
      if (fresh) {
        members.pop_back();
        out_.groups.push_back(std::move(members));
        group_collectives_.emplace_back();
      }
      group_of_[k][g] = it->second;
    }
  }
}

// The n-th collective a GPU issues on one of its groups is the same collective
// as every other member's n-th: all members run the same program.
CollectiveId Builder::collective(GroupKind kind, int gpu, CollectiveDesc desc) {
  const uint32_t group = group_of_[kind][gpu];
  auto& list = group_collectives_[group];
  uint32_t& n = issued_[kind][gpu];
  if (n == list.size()) {
    desc.group = group;
    list.push_back(out_.graph.add_collective(static_cast<uint32_t>(out_.collectives.size())));
    out_.collectives.push_back(desc);
  }
  return list[n++];
}

TaskId Builder::compute(int gpu, Category c, double s, TaskLabel label, TaskId dep) {
  const TaskId id = out_.graph.add_compute(gpu, c, seconds(s), label);
  if (dep != kNoTask) out_.graph.depend(dep, id);
  take_pending_dep(id);
  last_compute_[gpu] = id;
  return id;
}

TaskId Builder::comm(int gpu, Stream stream, Category c, GroupKind kind, CollectiveDesc desc,
                     TaskLabel label, TaskId dep) {
  const TaskId pending = pending_dep_;
  pending_dep_ = kNoTask;  // a collective issued now is not the layer's first task
  const TaskId id = out_.graph.add_comm(gpu, stream, c, collective(kind, gpu, desc), label);
  if (dep != kNoTask) out_.graph.depend(dep, id);
  pending_dep_ = pending;
  if (stream != Stream::kDpComm) take_pending_dep(id);
  return id;
}

TaskId Builder::tp_before(int gpu, TaskLabel label, TaskId dep) {
  if (p_.tp == 1 || !p_.sequence_parallel) return dep;
  CollectiveDesc d{CollectiveOp::kAllGather};
  d.bytes = static_cast<double>(tokens_) * m_.hidden * hw::bytes_per_element(w_.compute_dtype);
  return comm(gpu, Stream::kTpComm, Category::kTpComm, kTp, d, label, dep);
}

TaskId Builder::tp_after(int gpu, TaskLabel label, TaskId dep) {
  if (p_.tp == 1) return dep;
  CollectiveDesc d{p_.sequence_parallel ? CollectiveOp::kReduceScatter : CollectiveOp::kAllReduce};
  d.bytes = static_cast<double>(tokens_) * m_.hidden * hw::bytes_per_element(w_.compute_dtype);
  return comm(gpu, Stream::kTpComm, Category::kTpComm, kTp, d, label, dep);
}

// ZeRO-3: a layer's parameters are gathered from the data-parallel shards the
// first time the step needs them in each direction, one layer ahead.
TaskId Builder::emit_moe(int gpu, int layer, TaskLabel label, TaskId dep) {
  const bool bwd = label.phase == Phase::kBackward;
  const int j = moe_index_[layer];
  const LayerRouting& lr = routing_[j];
  const int sample =
      (label.microbatch + layout_.ep_group_index(gpu)) % static_cast<int>(lr.samples.size());
  const int position = layout_.coords(gpu).ep;
  const auto& expert = expert_seconds(j, sample, position, bwd);
  const int chunks = p_.a2a_overlap_chunks;
  const uint32_t matrix = static_cast<uint32_t>(j * lr.samples.size() + sample);
  const double elt = hw::bytes_per_element(w_.compute_dtype);
  CollectiveDesc dispatch{CollectiveOp::kAllToAllV};
  dispatch.matrix = matrix;
  dispatch.fraction = 1.0 / chunks;
  // FP8 dispatch carries one scale factor per 128 elements (DeepSeek-V3).
  dispatch.bytes =
      p_.dispatch_dtype == hw::DType::kFp8 ? m_.hidden * (1.0 + 4.0 / 128) : m_.hidden * elt;
  CollectiveDesc combine = dispatch;
  combine.transpose = true;
  combine.bytes = m_.hidden * elt;
  CollectiveDesc etp_gather{CollectiveOp::kAllGather}, etp_scatter{CollectiveOp::kReduceScatter};
  {
    const RoutingSample& rs = lr.samples[sample];
    int64_t recv = 0;
    for (int e = 0; e < rs.local_experts; ++e)
      recv += rs.expert_tokens[position * rs.local_experts + e];
    etp_gather.bytes = etp_scatter.bytes =
        static_cast<double>(recv) * p_.etp * m_.hidden * elt / chunks;
  }
  auto ep_comm = [&](bool towards_experts, TaskId d, uint8_t chunk) {
    TaskLabel l = label;
    l.chunk = chunk;
    // Forward: dispatch goes to the experts, combine comes back. Backward: the
    // combine's gradient goes to the experts, the dispatch's comes back.
    const Category c = (towards_experts != bwd) ? Category::kDispatch : Category::kCombine;
    return comm(gpu, Stream::kEpComm, c, kEp, towards_experts ? dispatch : combine, l, d);
  };

  if (label.phase == Phase::kForward) {
    const RoutingSample& rs = lr.samples[sample];
    for (int e = 0; e < rs.local_experts; ++e) {
      out_.expert_tokens_per_gpu[gpu] += rs.expert_tokens[position * rs.local_experts + e];
    }
  }
  const TaskId head =
      compute(gpu, Category::kOther, bwd ? bc_.unpermute_bwd : bc_.router_fwd, label, dep);
  const bool recompute_act = bwd && p_.recompute == Recompute::kSelective;
  TaskLabel recompute_label = label;
  recompute_label.phase = Phase::kRecompute;
  if (m_.shared_ffn > 0) {
    if (recompute_act) compute(gpu, Category::kDense, bc_.shared_act_recompute, recompute_label);
    compute(gpu, Category::kDense, bwd ? bc_.shared_bwd : bc_.shared_fwd, label);
  }
  std::vector<TaskId> to_experts(chunks), expert_done(chunks), back(chunks);
  // EP stream order: to0, to1, back0, to2, back1, ...: each chunk's return
  // trip queues behind the next chunk's outbound one.
  auto emit_back = [&](int c) {
    back[c] = ep_comm(false, expert_done[c], static_cast<uint8_t>(c));
  };
  for (int c = 0; c < chunks; ++c) {
    to_experts[c] = ep_comm(true, head, static_cast<uint8_t>(c));
    if (c >= 2) emit_back(c - 2);
    TaskLabel l = label;
    l.chunk = static_cast<uint8_t>(c);
    TaskId in = to_experts[c];
    if (p_.etp > 1) {
      in = comm(gpu, Stream::kTpComm, Category::kTpComm, kEtp, etp_gather, l, in);
    }
    if (recompute_act) {
      TaskLabel r = recompute_label;
      r.chunk = l.chunk;
      in = compute(gpu, Category::kExpert, expert[chunks + c], r, in);
    }
    expert_done[c] = compute(gpu, Category::kExpert, expert[c], l, in);
    if (p_.etp > 1) {
      expert_done[c] =
          comm(gpu, Stream::kTpComm, Category::kTpComm, kEtp, etp_scatter, l, expert_done[c]);
    }
  }
  for (int c = std::max(0, chunks - 2); c < chunks; ++c) emit_back(c);
  // The tail waits for every chunk's return trip.
  const TaskId tail = out_.graph.add_compute(
      gpu, Category::kOther, seconds(bwd ? bc_.router_bwd : bc_.unpermute_fwd), label);
  for (TaskId b : back) out_.graph.depend(b, tail);
  last_compute_[gpu] = tail;
  return tail;
}

TaskId Builder::emit_layer(int gpu, int layer, TaskLabel label, TaskId dep) {
  label.layer = static_cast<int16_t>(layer);
  const bool bwd = label.phase == Phase::kBackward;
  const bool moe = moe_index_[layer] >= 0;
  if (p_.zero_stage == 3) {
    // ZeRO-3: the layer's parameters are gathered from their data-parallel
    // shards the first time the step needs them in each direction. Gathers
    // queue on the data-parallel stream with no other dependency, so they
    // prefetch as far ahead as that stream's bandwidth allows.
    char& done = param_gathered_[gpu][layer * 2 + (bwd ? 1 : 0)];
    if (!done) {
      done = 1;
      CollectiveDesc d{CollectiveOp::kAllGather};
      const double dense = m_.attention_params_per_layer +
                           (moe ? m_.shared_expert_params + m_.router_params : m_.dense_ffn_params);
      d.bytes = dense / p_.tp * hw::bytes_per_element(w_.compute_dtype);
      pending_dep_ = comm(gpu, Stream::kDpComm, Category::kDpComm, kDp, d, label);
    }
  }
  if (!bwd) {
    TaskId x = tp_before(gpu, label, dep);
    x = compute(gpu, Category::kAttention, bc_.attention_fwd, label, x);
    x = tp_after(gpu, label, x);
    if (moe) return emit_moe(gpu, layer, label, x);
    x = tp_before(gpu, label, x);
    x = compute(gpu, Category::kDense, bc_.dense_fwd, label, x);
    return tp_after(gpu, label, x);
  }
  TaskId x = dep;
  const bool selective = p_.recompute == Recompute::kSelective;
  TaskLabel r = label;
  r.phase = Phase::kRecompute;
  // Both norms are re-run as the layer's backward begins.
  if (selective) x = compute(gpu, Category::kAttention, bc_.norm_recompute, r, x);
  if (moe) {
    x = emit_moe(gpu, layer, label, x);
  } else {
    x = tp_before(gpu, label, x);
    if (selective) x = compute(gpu, Category::kDense, bc_.dense_act_recompute, r, x);
    x = compute(gpu, Category::kDense, bc_.dense_bwd, label, x);
    x = tp_after(gpu, label, x);
  }
  x = tp_before(gpu, label, x);
  x = compute(gpu, Category::kAttention, bc_.attention_bwd, label, x);
  return tp_after(gpu, label, x);
}

// The framework's host work between pipeline passes: the pass starts after it,
// and it starts only once the pass's input has arrived (it is the first task
// of the pass, which the pipeline receive gates).
void Builder::emit_pass_overhead(int gpu, TaskLabel label) {
  if (p_.pp == 1 || framework_.pipeline_pass_s <= 0) return;
  label.layer = -1;
  compute(gpu, Category::kFramework, framework_.pipeline_pass_s, label);
}

void Builder::emit_gpu(int gpu) {
  const RankCoords& rc = layout_.coords(gpu);
  const int v = p_.virtual_stages;
  const auto order = pipeline_order(p_.schedule, p_.pp, rc.pp, microbatches_, v);
  auto& passes = passes_[gpu];
  passes.assign(static_cast<size_t>(microbatches_) * v, PassTasks{});
  const int total_vstages = p_.pp * v;
  for (const PipelineItem& item : order) {
    const int vstage = item.chunk * p_.pp + rc.pp;
    const LayerRange range = vstage_layers_[vstage];
    PassTasks& pt = passes[static_cast<size_t>(item.microbatch) * v + item.chunk];
    TaskLabel label;
    label.microbatch = static_cast<int16_t>(item.microbatch);
    label.chunk = static_cast<uint8_t>(item.chunk);
    const size_t first_task = out_.graph.size();
    if (item.forward) {
      label.phase = Phase::kForward;
      pt.f_prev = last_compute_[gpu];
      emit_pass_overhead(gpu, label);
      TaskId x = kNoTask;
      if (vstage == 0) x = compute(gpu, Category::kOther, bc_.embedding_fwd, label);
      for (int l = range.begin; l < range.end; ++l) x = emit_layer(gpu, l, label, x);
      if (vstage == total_vstages - 1) x = compute(gpu, Category::kOther, bc_.head_fwd, label, x);
      pt.f_first = static_cast<TaskId>(first_task);
      pt.f_last = x;
    } else {
      pt.b_prev = last_compute_[gpu];
      label.phase = Phase::kBackward;
      emit_pass_overhead(gpu, label);
      TaskId x = kNoTask;
      if (p_.recompute == Recompute::kFull) {
        // Full recompute re-runs the chunk's forward (all-to-alls included)
        // from the stored layer inputs before its backward.
        label.phase = Phase::kRecompute;
        for (int l = range.begin; l < range.end; ++l) x = emit_layer(gpu, l, label, x);
      }
      label.phase = Phase::kBackward;
      if (vstage == total_vstages - 1) x = compute(gpu, Category::kOther, bc_.head_bwd, label, x);
      for (int l = range.end - 1; l >= range.begin; --l) {
        x = emit_layer(gpu, l, label, x);
        if (item.microbatch == microbatches_ - 1) grads_ready_[gpu].push_back({x, l});
      }
      if (vstage == 0) x = compute(gpu, Category::kOther, bc_.embedding_bwd, label, x);
      pt.b_first = static_cast<TaskId>(first_task);
      pt.b_last = x;
    }
  }
}

// Activations (forward) and their gradients (backward) between consecutive
// virtual stages: a two-participant transfer. The receiving side joins only
// once its own previous work is done, so waiting for a slow upstream stage
// shows as pipeline bubble and only the transfer itself as communication.
void Builder::emit_pipeline_transfers() {
  if (p_.pp == 1 && p_.virtual_stages == 1) return;
  const int v = p_.virtual_stages, total = p_.pp * v;
  const double bytes = static_cast<double>(tokens_) * m_.hidden *
                       hw::bytes_per_element(w_.compute_dtype) / (p_.sequence_parallel ? p_.tp : 1);
  std::map<std::pair<int, int>, uint32_t> p2p_groups;
  auto group_of = [&](int a, int b) {
    auto [it, fresh] = p2p_groups.emplace(std::make_pair(a, b), 0);
    if (fresh) {
      it->second = static_cast<uint32_t>(out_.groups.size());
      out_.groups.push_back({a, b});
    }
    return it->second;
  };
  for (int gpu = 0; gpu < p_.gpus(); ++gpu) {
    const RankCoords& rc = layout_.coords(gpu);
    for (int mb = 0; mb < microbatches_; ++mb) {
      for (int chunk = 0; chunk < v; ++chunk) {
        const int vstage = chunk * p_.pp + rc.pp;
        const PassTasks& me = passes_[gpu][static_cast<size_t>(mb) * v + chunk];
        for (int dir = 0; dir < 2; ++dir) {
          const bool forward = dir == 0;
          const int from_vstage = forward ? vstage - 1 : vstage + 1;
          if (from_vstage < 0 || from_vstage >= total) continue;
          const int from_stage = from_vstage % p_.pp, from_chunk = from_vstage / p_.pp;
          const int src = layout_.rank(rc.tp, rc.dp, from_stage);
          const PassTasks& them = passes_[src][static_cast<size_t>(mb) * v + from_chunk];
          CollectiveDesc d{CollectiveOp::kSendRecv};
          d.bytes = bytes;
          d.group = group_of(src, gpu);
          const CollectiveId c =
              out_.graph.add_collective(static_cast<uint32_t>(out_.collectives.size()));
          out_.collectives.push_back(d);
          TaskLabel label;
          label.microbatch = static_cast<int16_t>(mb);
          label.chunk = static_cast<uint8_t>(chunk);
          label.phase = forward ? Phase::kForward : Phase::kBackward;
          const TaskId send = out_.graph.add_comm(src, Stream::kNone, Category::kPpComm, c, label);
          const TaskId recv = out_.graph.add_comm(gpu, Stream::kNone, Category::kPpComm, c, label);
          out_.graph.depend(forward ? them.f_last : them.b_last, send);
          out_.graph.depend(forward ? them.f_last : them.b_last, recv);
          const TaskId prev = forward ? me.f_prev : me.b_prev;
          if (prev != kNoTask) out_.graph.depend(prev, recv);
          out_.graph.depend(recv, forward ? me.f_first : me.b_first);
        }
      }
    }
  }
}

// Gradient reduction over the data-parallel groups (dense parameters over dp,
// expert parameters over expert-dp), one bucket per layer, issued as each
// layer's last backward finishes (or all after the backward pass); then the
// optimizer step on this GPU's shard.
void Builder::emit_data_parallel(int gpu) {
  const RankCoords& rc = layout_.coords(gpu);
  const bool reduce_scatter = p_.zero_stage >= 1;
  const double grad_bytes = 4;  // gradients are accumulated and reduced in FP32
  TaskLabel label;
  label.phase = Phase::kStep;
  std::vector<TaskId> reductions;
  const TaskId end_of_backward = last_compute_[gpu];
  double dense_local = 0, expert_local = 0;
  for (const auto& [task, layer] : grads_ready_[gpu]) {
    label.layer = static_cast<int16_t>(layer);
    const bool moe = moe_index_[layer] >= 0;
    const double dense =
        (m_.attention_params_per_layer +
         (moe ? m_.shared_expert_params + m_.router_params : m_.dense_ffn_params)) /
        p_.tp;
    const double experts =
        moe ? m_.expert_params * (static_cast<double>(m_.slots()) / p_.ep) / p_.etp : 0;
    dense_local += dense;
    expert_local += experts;
    const TaskId dep = p_.overlap_grad_reduce ? task : end_of_backward;
    if (p_.dp > 1) {
      CollectiveDesc d{reduce_scatter ? CollectiveOp::kReduceScatter : CollectiveOp::kAllReduce};
      d.bytes = dense * grad_bytes;
      reductions.push_back(comm(gpu, Stream::kDpComm, Category::kDpComm, kDp, d, label, dep));
    }
    if (moe && p_.expert_dp() > 1) {
      CollectiveDesc d{reduce_scatter ? CollectiveOp::kReduceScatter : CollectiveOp::kAllReduce};
      d.bytes = experts * grad_bytes;
      reductions.push_back(comm(gpu, Stream::kDpComm, Category::kDpComm, kEdp, d, label, dep));
    }
  }
  const int vstage_first = rc.pp, vstage_last = (p_.virtual_stages - 1) * p_.pp + rc.pp;
  if (vstage_first == 0) dense_local += m_.embedding_params / p_.tp;
  if (vstage_last == p_.pp * p_.virtual_stages - 1) dense_local += m_.output_params / p_.tp;
  // Adam with FP32 master weights: read gradient, master weight, two moments;
  // write master weight, two moments and the BF16 weight: ~30 bytes/parameter.
  const double shard_params = reduce_scatter ? dense_local / p_.dp + expert_local / p_.expert_dp()
                                             : dense_local + expert_local;
  label.layer = -1;
  const TaskId opt = out_.graph.add_compute(
      gpu, Category::kOptimizer, seconds(cost_.memory_bound_seconds(shard_params * 30.0)), label);
  for (TaskId r : reductions) out_.graph.depend(r, opt);
  last_compute_[gpu] = opt;
  if (reduce_scatter && p_.zero_stage < 3 && !p_.overlap_param_gather) {
    // Updated parameter shards are gathered before the next step can start.
    CollectiveDesc d{CollectiveOp::kAllGather};
    d.bytes = dense_local * hw::bytes_per_element(w_.compute_dtype);
    if (p_.dp > 1) comm(gpu, Stream::kDpComm, Category::kDpComm, kDp, d, label, opt);
    d.bytes = expert_local * hw::bytes_per_element(w_.compute_dtype);
    if (p_.expert_dp() > 1) comm(gpu, Stream::kDpComm, Category::kDpComm, kEdp, d, label, opt);
  }
}

StepGraph Builder::build() {
  microbatches_ = static_cast<int>(w_.microbatches(p_));
  tokens_ = w_.seq_len * p_.micro_batch_size;
  moe_tokens_ = tokens_ / p_.tp;
  out_.microbatches = microbatches_;
  out_.graph = TaskGraph(p_.gpus());
  vstage_layers_ =
      split_layers(m_.layers, p_.pp * p_.virtual_stages, p_.embedding_and_loss_as_layers);
  moe_index_.assign(m_.layers, -1);
  int j = 0;
  for (int l = 0; l < m_.layers; ++l) {
    if (m_.moe_layer[l]) moe_index_[l] = j++;
  }
  if (static_cast<size_t>(j) != routing_.size()) {
    throw std::logic_error("build_training_step: routing has the wrong number of MoE layers");
  }
  // DeepEP-style (hierarchical) dispatch sends a token once per destination
  // rank; the all-to-all dispatcher sends one copy per expert.
  const bool dedup = p_.a2a_algo == coll::AllToAllAlgorithm::kHierarchical;
  for (const LayerRouting& lr : routing_) {
    for (const RoutingSample& rs : lr.samples) {
      out_.matrices.push_back(dedup && !rs.pair_tokens_dedup.empty() ? rs.pair_tokens_dedup
                                                                     : rs.pair_tokens);
    }
  }
  size_t cache_slots = 0;
  for (const LayerRouting& lr : routing_) {
    expert_cache_offset_.push_back(cache_slots);
    cache_slots += lr.samples.size() * p_.ep * 2;
  }
  expert_cache_.resize(cache_slots);
  compute_block_costs();
  intern_groups();
  passes_.resize(p_.gpus());
  out_.expert_tokens_per_gpu.assign(p_.gpus(), 0);
  last_compute_.assign(p_.gpus(), kNoTask);
  grads_ready_.resize(p_.gpus());
  if (p_.zero_stage == 3) param_gathered_.assign(p_.gpus(), std::vector<char>(m_.layers * 2, 0));
  {
    // About a dozen tasks per layer and pass; reserving avoids regrowing
    // arrays of many millions of tasks.
    const double layers_per_gpu = static_cast<double>(m_.layers) / p_.pp;
    const double per_gpu =
        2.0 * microbatches_ * layers_per_gpu * (8 + 3 * p_.a2a_overlap_chunks) + 16;
    const size_t estimate = static_cast<size_t>(per_gpu * p_.gpus() * 1.1);
    out_.graph.reserve(estimate, estimate * 3 / 2);
  }
  for (int g = 0; g < p_.gpus(); ++g) emit_gpu(g);
  for (int g = 0; g < p_.gpus(); ++g) emit_data_parallel(g);
  emit_pipeline_transfers();
  out_.graph.finalize();
  return std::move(out_);
}

}  // namespace

StepGraph build_training_step(const ModelShape& model, const ParallelConfig& parallel,
                              const TrainingWorkload& workload,
                              const std::vector<LayerRouting>& routing,
                              const hw::ComputeCostModel& cost,
                              const FrameworkOverheads& framework) {
  Builder b(model, parallel, workload, routing, cost, framework);
  return b.build();
}

}  // namespace moesim::exec
