#include "sim/exec/pipeline_schedule.h"

#include <algorithm>
#include <deque>
#include <stdexcept>

namespace moesim::exec {
namespace {

PipelineItem forward_item(int microbatch, int chunk) {
  return {PassKind::kForward, microbatch, chunk, false};
}
PipelineItem backward_item(int microbatch, int chunk) {
  return {PassKind::kBackward, microbatch, chunk, false};
}

// Megatron-LM's 1F1B and interleaved 1F1B. `combined`: Megatron-Core's EP
// overlap variant (one more warm-up forward; steady-state pairs combined).
std::vector<PipelineItem> one_f_one_b(PipelineSchedule schedule, int stages, int stage,
                                      int microbatches, int virtual_stages, bool combined) {
  std::vector<PipelineItem> order;
  const int extra = combined ? 1 : 0;
  auto steady = [&](PipelineItem f, PipelineItem b) {
    f.paired_with_next = combined;
    order.push_back(f);
    order.push_back(b);
  };
  if (schedule == PipelineSchedule::kOneFOneB || virtual_stages == 1) {
    const int warmup = std::min(stages - stage - 1 + extra, microbatches);
    for (int i = 0; i < warmup; ++i) order.push_back(forward_item(i, 0));
    for (int i = 0; i < microbatches - warmup; ++i) {
      steady(forward_item(warmup + i, 0), backward_item(i, 0));
    }
    for (int i = microbatches - warmup; i < microbatches; ++i) order.push_back(backward_item(i, 0));
    return order;
  }
  // Interleaved 1F1B (Narayanan et al. 2021; Megatron-LM's
  // forward_backward_pipelining_with_interleaving): passes are numbered k, each
  // group of `stages` consecutive ks walks the micro-batches of one chunk.
  const int p = stages, v = virtual_stages;
  const int total = microbatches * v;
  const auto item = [&](int k, bool forward) {
    const int group = k / p;
    const int chunk_in_cycle = group % v;
    const int chunk = forward ? chunk_in_cycle : v - 1 - chunk_in_cycle;
    const int mb = (k / (p * v)) * p + k % p;
    return forward ? forward_item(mb, chunk) : backward_item(mb, chunk);
  };
  const int warmup = std::min(total, (p - stage - 1) * 2 + (v - 1) * p + extra);
  for (int k = 0; k < warmup; ++k) order.push_back(item(k, true));
  for (int i = 0; i < total - warmup; ++i) steady(item(warmup + i, true), item(i, false));
  for (int k = total - warmup; k < total; ++k) order.push_back(item(k, false));
  return order;
}

// A direct transcription of DualPipe.step (dualpipe/dualpipe.py), emitting
// items instead of running chunks. `phase` is DualPipe's: the module index is
// phase ^ is_in_second_half.
class DualPipeOrder {
 public:
  DualPipeOrder(int stages, int rank, int microbatches)
      : half_chunks_(microbatches / 2), second_half_(rank >= stages / 2) {}

  void forward(int phase, bool paired = false) {
    const int chunk = phase ^ (second_half_ ? 1 : 0);
    PipelineItem it = forward_item(microbatch(chunk, forward_count_[chunk]++), chunk);
    it.paired_with_next = paired;
    order_.push_back(it);
  }
  void backward(int phase, bool zero_bubble = false) {
    const int chunk = phase ^ (second_half_ ? 1 : 0);
    PipelineItem it = backward_item(microbatch(chunk, backward_count_[chunk]++), chunk);
    if (zero_bubble) {
      it.kind = PassKind::kBackwardInput;
      deferred_.push_back(it);
    }
    order_.push_back(it);
  }
  void forward_backward(int phase0, int phase1) {
    forward(phase0, true);
    backward(phase1);
  }
  // WeightGradStore.pop: the oldest zero-bubble backward's weight gradients.
  void weight() {
    if (deferred_.empty()) throw std::logic_error("dualpipe_order: no weight gradients to run");
    PipelineItem it = deferred_.front();
    deferred_.pop_front();
    it.kind = PassKind::kWeightGrad;
    order_.push_back(it);
  }
  std::vector<PipelineItem> take() {
    if (!deferred_.empty()) throw std::logic_error("dualpipe_order: weight gradients left over");
    return std::move(order_);
  }

 private:
  int microbatch(int chunk, int index) const { return chunk * half_chunks_ + index; }

  int half_chunks_;
  bool second_half_;
  int forward_count_[2] = {0, 0}, backward_count_[2] = {0, 0};
  std::deque<PipelineItem> deferred_;
  std::vector<PipelineItem> order_;
};

}  // namespace

std::vector<PipelineItem> pipeline_order(PipelineSchedule schedule, int stages, int stage,
                                         int microbatches, int virtual_stages) {
  return one_f_one_b(schedule, stages, stage, microbatches, virtual_stages, false);
}

std::vector<PipelineItem> combined_1f1b_order(PipelineSchedule schedule, int stages, int stage,
                                              int microbatches, int virtual_stages) {
  return one_f_one_b(schedule, stages, stage, microbatches, virtual_stages, true);
}

std::vector<PipelineItem> dualpipe_order(int stages, int rank, int microbatches) {
  if (stages < 2 || stages % 2 != 0 || microbatches % 2 != 0 || microbatches < 2 * stages) {
    throw std::logic_error(
        "dualpipe_order: needs an even pp >= 2 and an even number of "
        "micro-batches >= 2 pp");
  }
  const int half_ranks = stages / 2;
  const int half_rank = std::min(rank, stages - 1 - rank);
  const int half_chunks = microbatches / 2;
  const bool middle = rank == half_ranks - 1 || rank == half_ranks;
  DualPipeOrder d(stages, rank, microbatches);
  // Step 1: nF0.
  for (int i = 0; i < (half_ranks - half_rank - 1) * 2; ++i) d.forward(0);
  // Step 2: nF0F1.
  for (int i = 0; i < half_rank + 1; ++i) {
    d.forward(0);
    d.forward(1);
  }
  // Step 3: nB1W1F1 (zero bubble).
  for (int i = 0; i < half_ranks - half_rank - 1; ++i) {
    d.backward(1, true);
    d.weight();
    d.forward(1);
  }
  // Step 4 (main): nF0B1F1B0. The middle ranks do not overlap their first
  // F0 and B1 ("to further reduce bubble size").
  for (int i = 0; i < half_chunks - stages + half_rank + 1; ++i) {
    if (i == 0 && middle) {
      d.forward(0);
      d.backward(1);
    } else {
      d.forward_backward(0, 1);
    }
    d.forward_backward(1, 0);
  }
  // Step 5: nB1F1B0.
  for (int i = 0; i < half_ranks - half_rank - 1; ++i) {
    d.backward(1);
    d.forward_backward(1, 0);
  }
  // Step 6: nB1B0, the second half of the chunks zero-bubble.
  const int step_6 = half_rank + 1;
  bool zero_bubble = false;
  for (int i = 0; i < step_6; ++i) {
    if (i == step_6 / 2 && half_rank % 2 == 1) zero_bubble = true;
    d.backward(1, zero_bubble);
    if (i == step_6 / 2 && half_rank % 2 == 0) zero_bubble = true;
    d.backward(0, zero_bubble);
  }
  // Step 7: nWB0 (zero bubble).
  for (int i = 0; i < half_ranks - half_rank - 1; ++i) {
    d.weight();
    d.backward(0, true);
  }
  // Step 8: nW.
  for (int i = 0; i < half_rank + 1; ++i) d.weight();
  return d.take();
}

std::vector<PipelineItem> schedule_order(const ParallelConfig& p, int stage, int microbatches) {
  switch (p.moe_a2a_overlap) {
    case MoeA2aOverlap::kNone:
      return pipeline_order(p.schedule, p.pp, stage, microbatches, p.virtual_stages);
    case MoeA2aOverlap::kOneFOneB:
      return combined_1f1b_order(p.schedule, p.pp, stage, microbatches, p.virtual_stages);
    case MoeA2aOverlap::kDualPipe:
      return dualpipe_order(p.pp, stage, microbatches);
  }
  return {};
}

int chunks_per_rank(const ParallelConfig& p) {
  return p.moe_a2a_overlap == MoeA2aOverlap::kDualPipe ? 2 : p.virtual_stages;
}

int stage_count(const ParallelConfig& p) {
  return p.moe_a2a_overlap == MoeA2aOverlap::kDualPipe ? p.pp : p.pp * p.virtual_stages;
}

int virtual_stage_of(const ParallelConfig& p, int stage, int chunk) {
  if (p.moe_a2a_overlap == MoeA2aOverlap::kDualPipe) return chunk == 0 ? stage : p.pp - 1 - stage;
  return chunk * p.pp + stage;
}

int dualpipe_direction(const ParallelConfig& p, int microbatch, int microbatches) {
  if (p.moe_a2a_overlap != MoeA2aOverlap::kDualPipe) return -1;
  return microbatch < microbatches / 2 ? 0 : 1;
}

std::vector<LayerRange> split_layers(int layers, int virtual_stage_count,
                                     bool embedding_and_loss_as_layers) {
  std::vector<LayerRange> out(virtual_stage_count);
  const int shares = layers + (embedding_and_loss_as_layers ? 2 : 0);
  const int base = shares / virtual_stage_count, extra = shares % virtual_stage_count;
  int at = embedding_and_loss_as_layers ? -1 : 0;  // share -1 is the embedding
  for (int v = 0; v < virtual_stage_count; ++v) {
    out[v].begin = std::max(0, at);
    at += base + (v < extra ? 1 : 0);
    out[v].end = std::min(layers, std::max(0, at));
  }
  return out;
}

std::vector<LayerRange> stage_layers(const ModelShape& m, const ParallelConfig& p) {
  if (p.layout.empty()) {
    std::vector<LayerRange> out =
        split_layers(m.model_layers(), stage_count(p), p.embedding_and_loss_as_layers);
    out.back().end += m.mtp_layers;
    return out;
  }
  std::vector<LayerRange> out(p.layout.size());
  int at = 0;
  for (size_t v = 0; v < p.layout.size(); ++v) {
    out[v].begin = at;
    at += p.layout[v].model_layers + p.layout[v].mtp_layers;
    out[v].end = at;
  }
  return out;
}

int mtp_stage(const ModelShape& m, const std::vector<LayerRange>& stages) {
  if (m.mtp_layers == 0) return -1;
  for (size_t v = 0; v < stages.size(); ++v) {
    if (stages[v].begin <= m.model_layers() && m.model_layers() < stages[v].end)
      return static_cast<int>(v);
  }
  return -1;
}

}  // namespace moesim::exec
