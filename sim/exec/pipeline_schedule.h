#pragma once
// Pipeline schedules: the order in which one stage runs the forward and
// backward passes of its micro-batches (Megatron-LM's 1F1B and interleaved
// 1F1B with virtual stages, both optionally with Megatron-Core's combined
// forward-backward steps for EP all-to-all overlap, and DeepSeek's DualPipe),
// and how layers are split among virtual stages.

#include <cstdint>
#include <vector>

#include "sim/exec/step_inputs.h"

namespace moesim::exec {

enum class PassKind : uint8_t {
  kForward,
  kBackward,       // input and weight gradients
  kBackwardInput,  // input gradients only (zero-bubble): a later kWeightGrad does the rest
  kWeightGrad,     // the weight gradients a kBackwardInput of (microbatch, chunk) left
};

struct PipelineItem {
  PassKind kind = PassKind::kForward;
  int microbatch = 0;
  int chunk = 0;  // model chunk on this rank (virtual stage index; DualPipe: direction)
  // A forward that runs as one overlapped step with the next item, a
  // backward (Megatron-Core's combined_forward_backward_step, DualPipe's
  // _forward_backward_chunk).
  bool paired_with_next = false;

  bool forward() const { return kind == PassKind::kForward; }
};

// The sequence of passes stage `stage` of `stages` runs. Interleaved needs
// microbatches % stages == 0 (as in Megatron-LM).
std::vector<PipelineItem> pipeline_order(PipelineSchedule schedule, int stages, int stage,
                                         int microbatches, int virtual_stages);

// The same schedule with Megatron-Core's EP all-to-all overlap
// (--overlap-moe-expert-parallel-comm): one more warm-up forward
// (schedules.py get_pp_rank_microbatches: num_warmup_microbatches += 1; with
// pp = 1, combined_1f1b.py combined_1f1b_schedule_for_no_pipelining runs
// F(0) alone), then every steady-state forward paired with the backward
// after it, then the remaining backwards alone.
std::vector<PipelineItem> combined_1f1b_order(PipelineSchedule schedule, int stages, int stage,
                                              int microbatches, int virtual_stages);

// DualPipe (deepseek-ai/DualPipe dualpipe/dualpipe.py, DualPipe.step): rank
// `rank` of `stages` (even) runs chunk 0 = stage `rank` of the forward
// direction, whose micro-batches 0 .. n/2-1 enter at rank 0, and chunk 1 =
// stage stages-1-rank of the reverse direction, whose micro-batches n/2 .. n-1
// enter at rank stages-1. With h = min(rank, stages-1-rank), "phase 0" the
// direction this rank sits in the first half of and n = microbatches (even,
// >= 2 stages), the eight steps are:
//   1. (stages/2-h-1) x 2 forwards of phase 0;
//   2. h+1 x (F phase 0, F phase 1);
//   3. stages/2-h-1 x (B phase 1 zero-bubble, its W, F phase 1);
//   4. n/2-stages+h+1 x ([F0 & B1], [F1 & B0]) overlapped pairs (the two
//      middle ranks run their first F0 and B1 apart);
//   5. stages/2-h-1 x (B phase 1, [F1 & B0]);
//   6. h+1 x (B phase 1, B phase 0), zero-bubble from the middle on;
//   7. stages/2-h-1 x (W, B phase 0 zero-bubble);
//   8. h+1 x W.
// Weight-gradient passes complete the zero-bubble backwards in FIFO order.
std::vector<PipelineItem> dualpipe_order(int stages, int rank, int microbatches);

// The order `parallel` runs on stage `stage`: one of the three above.
std::vector<PipelineItem> schedule_order(const ParallelConfig& parallel, int stage,
                                         int microbatches);

// Model chunks per rank under `parallel`: virtual_stages, or 2 for DualPipe.
int chunks_per_rank(const ParallelConfig& parallel);

// The virtual stage chunk `chunk` of pipeline rank `stage` runs, as an index
// into split_layers(layers, stage_count(parallel)): chunk * pp + stage, or
// for DualPipe stage (chunk 0) and pp-1-stage (chunk 1). A micro-batch flows
// through virtual stages 0, 1, ... in order.
int virtual_stage_of(const ParallelConfig& parallel, int stage, int chunk);
// Virtual stages in the model's split: pp x virtual_stages (DualPipe: pp).
int stage_count(const ParallelConfig& parallel);
// DualPipe: the chunk (direction) micro-batch `microbatch` of `microbatches`
// belongs to. Otherwise every chunk sees every micro-batch: -1.
int dualpipe_direction(const ParallelConfig& parallel, int microbatch, int microbatches);

// Layers of virtual stage v (= chunk * stages + stage): contiguous ranges, as
// even as possible, earlier virtual stages taking the remainder. With
// `embedding_and_loss_as_layers` (Megatron-LM's --account-for-embedding- and
// --account-for-loss-in-pipeline-split) the embedding and the loss each take
// one layer's share of the first and last virtual stage.
struct LayerRange {
  int begin = 0, end = 0;
};
std::vector<LayerRange> split_layers(int layers, int virtual_stage_count,
                                     bool embedding_and_loss_as_layers = false);

// The layers of each virtual stage under `parallel` (indices into the
// model's layers, MTP modules' last; contiguous and in order): the stages of
// parallel.pipeline_layout, or split_layers over the model's own layers with
// the MTP modules' layers added to the last stage, where Megatron-Core puts
// them without a layout (multi_token_prediction.py mtp_on_this_rank).
std::vector<LayerRange> stage_layers(const ModelShape& model, const ParallelConfig& parallel);

// The virtual stage holding the MTP modules (-1 without any). Where it is not
// the last one (a layout's standalone "m" stage), Megatron-Core (v0.16
// gpt_model.py _postprocess; p2p_communication.py mtp_standalone) sends each
// module's hidden states on, concatenated after the model's along the
// sequence, and the last stage runs every module's output head and loss.
int mtp_stage(const ModelShape& model, const std::vector<LayerRange>& stages);

}  // namespace moesim::exec
