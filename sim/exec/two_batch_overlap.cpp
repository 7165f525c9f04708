#include "sim/exec/two_batch_overlap.h"

#include <algorithm>
#include <vector>

namespace moesim::exec {
namespace {

enum class Part { kAttention, kExpert, kOther, kDispatch, kCombine };
enum class OpKind { kCompute, kLaunch, kWait };

struct Op {
  OpKind kind = OpKind::kCompute;
  Part part = Part::kOther;  // compute: where its time goes; launch / wait: which transfer
  double seconds = 0;        // compute: alone on the GPU; launch: the transfer alone
  bool deep_gemm = false;    // a DeepGEMM kernel (its SM budget)
};
using Stage = std::vector<Op>;

Op compute(Part part, double seconds, bool deep_gemm = false) {
  return {OpKind::kCompute, part, seconds, deep_gemm};
}
// `seconds` of which `gemm` run on DeepGEMM: two kernels' worth of ops.
void add_compute(Stage& stage, Part part, double seconds, double gemm) {
  stage.push_back(compute(part, gemm, true));
  stage.push_back(compute(part, seconds - gemm));
}
Op launch(Part transfer, double seconds) {
  return {OpKind::kLaunch, transfer, seconds, false};
}
Op wait(Part transfer) {
  return {OpKind::kWait, transfer, 0, false};
}

// One micro-batch's stages over the whole forward.
std::vector<Stage> stages(std::span<const LayerCost> layers, OverlapSchedule schedule) {
  std::vector<Stage> out;
  const LayerCost* previous = nullptr;  // prefill: the last MoE layer's tail
  for (const LayerCost& l : layers) {
    const double ffn = l.moe ? l.shared : l.dense;
    const double ffn_gemm = l.moe ? l.shared_gemm : l.dense_gemm;
    if (schedule == OverlapSchedule::kDecode) {
      Stage prep = {compute(Part::kOther, l.other)};
      add_compute(prep, Part::kAttention, l.attention_prep, l.attention_prep_gemm);
      out.push_back(std::move(prep));
      out.push_back({compute(Part::kAttention, l.attention_core), compute(Part::kOther, l.router)});
      Stage ffn_stage;
      if (l.moe) ffn_stage.push_back(launch(Part::kDispatch, l.dispatch));
      add_compute(ffn_stage, Part::kExpert, ffn, ffn_gemm);
      out.push_back(std::move(ffn_stage));
      if (l.moe) {
        out.push_back({wait(Part::kDispatch), compute(Part::kExpert, l.expert, true),
                       launch(Part::kCombine, l.combine)});
        out.push_back({wait(Part::kCombine)});
      } else {
        out.push_back({});
        out.push_back({});
      }
      continue;
    }
    Stage head;
    if (previous) {
      add_compute(head, Part::kExpert, previous->shared, previous->shared_gemm);
      head.push_back(wait(Part::kCombine));
    }
    head.push_back(compute(Part::kOther, l.other));
    add_compute(head, Part::kAttention, l.attention_prep, l.attention_prep_gemm);
    head.push_back(compute(Part::kAttention, l.attention_core));
    head.push_back(compute(Part::kOther, l.router));
    if (!l.moe) {
      add_compute(head, Part::kExpert, ffn, ffn_gemm);
      out.push_back(std::move(head));
      out.push_back({});
      previous = nullptr;
      continue;
    }
    head.push_back(launch(Part::kDispatch, l.dispatch));
    out.push_back(std::move(head));
    out.push_back({wait(Part::kDispatch), compute(Part::kExpert, l.expert, true),
                   launch(Part::kCombine, l.combine)});
    previous = &l;
  }
  if (previous) {
    Stage tail;
    add_compute(tail, Part::kExpert, previous->shared, previous->shared_gemm);
    tail.push_back(wait(Part::kCombine));
    out.push_back(std::move(tail));
  }
  return out;
}

// The GPU stream and the network, as the two micro-batches' stages run.
class Timeline {
 public:
  explicit Timeline(const OverlapSlowdown& slowdown) : slowdown_(slowdown) {}

  void run(const Stage& stage, int batch) {
    for (const Op& op : stage) {
      switch (op.kind) {
        case OpKind::kCompute:
          run_compute(op);
          break;
        case OpKind::kLaunch: {
          const double start = std::max(now_, network_free_);
          network_free_ = start + op.seconds;
          done_[batch][op.part == Part::kDispatch ? 0 : 1] = network_free_;
          break;
        }
        case OpKind::kWait: {
          const double done = done_[batch][op.part == Part::kDispatch ? 0 : 1];
          if (done > now_) {
            add(op.part, done - now_);
            now_ = done;
          }
          break;
        }
      }
    }
  }
  const IterationCost& cost() const { return cost_; }

 private:
  void run_compute(const Op& op) {
    if (op.seconds <= 0) return;
    double work = op.seconds * (op.deep_gemm ? slowdown_.deep_gemm : 1.0);
    double elapsed = 0;
    // While a transfer holds SMs, other compute runs `in_flight` times slower.
    if (slowdown_.in_flight > 1 && network_free_ > now_ && !op.deep_gemm) {
      const double window = network_free_ - now_;
      const double slowed = window / slowdown_.in_flight;  // work done inside the window
      if (work * slowdown_.in_flight <= window) {
        elapsed = work * slowdown_.in_flight;
        work = 0;
      } else {
        elapsed = window;
        work -= slowed;
      }
    }
    elapsed += work;
    add(op.part, elapsed);
    now_ += elapsed;
  }
  void add(Part part, double seconds) {
    switch (part) {
      case Part::kAttention:
        cost_.attention_s += seconds;
        break;
      case Part::kExpert:
        cost_.expert_s += seconds;
        break;
      case Part::kOther:
        cost_.other_s += seconds;
        break;
      case Part::kDispatch:
        cost_.dispatch_s += seconds;
        break;
      case Part::kCombine:
        cost_.combine_s += seconds;
        break;
    }
    cost_.seconds += seconds;
  }

  OverlapSlowdown slowdown_;
  double now_ = 0, network_free_ = 0;
  double done_[2][2] = {{0, 0}, {0, 0}};  // [micro-batch][dispatch, combine]
  IterationCost cost_;
};

}  // namespace

IterationCost two_batch_overlap(std::span<const LayerCost> a, std::span<const LayerCost> b,
                                OverlapSchedule schedule, const OverlapSlowdown& slowdown) {
  const std::vector<Stage> stages_a = stages(a, schedule), stages_b = stages(b, schedule);
  const size_t delta = schedule == OverlapSchedule::kDecode ? 2 : 0;
  Timeline timeline(slowdown);
  const size_t n = stages_a.size();
  for (size_t i = 0; i < std::min(delta, n); ++i) timeline.run(stages_a[i], 0);
  for (size_t i = delta; i < n; ++i) {
    timeline.run(stages_a[i], 0);
    timeline.run(stages_b[i - delta], 1);
  }
  for (size_t i = n > delta ? n - delta : 0; i < n; ++i) timeline.run(stages_b[i], 1);
  return timeline.cost();
}

}  // namespace moesim::exec
