// Pipeline schedules against hand-written tables (Megatron-LM's
// forward_backward_pipelining_with_interleaving and 1F1B).

#include "sim/exec/pipeline_schedule.h"

#include <string>

#include <catch2/catch.hpp>

namespace moesim::exec {
namespace {

// "F<mb>.<chunk>" / "B<mb>.<chunk>" per pass, space-separated; "b" a
// zero-bubble backward (input gradients only), "W" its weight gradients;
// "F..&B.." a forward and a backward run as one overlapped pair.
std::string render(const std::vector<PipelineItem>& order) {
  static constexpr const char* kKind[] = {"F", "B", "b", "W"};
  std::string s;
  for (const PipelineItem& i : order) {
    if (!s.empty() && s.back() != '&') s += ' ';
    s += kKind[static_cast<int>(i.kind)];
    s += std::to_string(i.microbatch);
    s += '.';
    s += std::to_string(i.chunk);
    if (i.paired_with_next) s += '&';
  }
  return s;
}

// pp = 4, virtual_stages = 2, 8 micro-batches. Forward pass k walks chunk
// (k / 4) mod 2 over micro-batches (k / 8) * 4 + k mod 4; backward pass k the
// chunks in reverse. Warm-up on stage s: (4 - s - 1) * 2 + (2 - 1) * 4
// forwards (10, 8, 6, 4), then one forward and one backward in turn, then the
// remaining backwards.
TEST_CASE("interleaved 1F1B: pp=4, vpp=2, 8 micro-batches, pass order per stage",
          "[exec][pipeline]") {
  const char* expected[4] = {
      // stage 0: 10 warm-up forwards
      "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 F2.1 F3.1 F4.0 F5.0 "
      "F6.0 B0.1 F7.0 B1.1 F4.1 B2.1 F5.1 B3.1 F6.1 B0.0 F7.1 B1.0 "
      "B2.0 B3.0 B4.1 B5.1 B6.1 B7.1 B4.0 B5.0 B6.0 B7.0",
      // stage 1: 8 warm-up forwards
      "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 F2.1 F3.1 "
      "F4.0 B0.1 F5.0 B1.1 F6.0 B2.1 F7.0 B3.1 F4.1 B0.0 F5.1 B1.0 F6.1 B2.0 F7.1 B3.0 "
      "B4.1 B5.1 B6.1 B7.1 B4.0 B5.0 B6.0 B7.0",
      // stage 2: 6 warm-up forwards
      "F0.0 F1.0 F2.0 F3.0 F0.1 F1.1 "
      "F2.1 B0.1 F3.1 B1.1 F4.0 B2.1 F5.0 B3.1 F6.0 B0.0 F7.0 B1.0 F4.1 B2.0 F5.1 B3.0 "
      "F6.1 B4.1 F7.1 B5.1 B6.1 B7.1 B4.0 B5.0 B6.0 B7.0",
      // stage 3: 4 warm-up forwards
      "F0.0 F1.0 F2.0 F3.0 "
      "F0.1 B0.1 F1.1 B1.1 F2.1 B2.1 F3.1 B3.1 F4.0 B0.0 F5.0 B1.0 F6.0 B2.0 F7.0 B3.0 "
      "F4.1 B4.1 F5.1 B5.1 F6.1 B6.1 F7.1 B7.1 B4.0 B5.0 B6.0 B7.0",
  };
  for (int stage = 0; stage < 4; ++stage) {
    INFO("stage " << stage);
    CHECK(render(pipeline_order(PipelineSchedule::kInterleaved, 4, stage, 8, 2)) ==
          expected[stage]);
  }
}

TEST_CASE("1F1B: pp - stage - 1 warm-up forwards, then alternate, then drain", "[exec][pipeline]") {
  CHECK(render(pipeline_order(PipelineSchedule::kOneFOneB, 4, 0, 5, 1)) ==
        "F0.0 F1.0 F2.0 F3.0 B0.0 F4.0 B1.0 B2.0 B3.0 B4.0");
  CHECK(render(pipeline_order(PipelineSchedule::kOneFOneB, 4, 3, 5, 1)) ==
        "F0.0 B0.0 F1.0 B1.0 F2.0 B2.0 F3.0 B3.0 F4.0 B4.0");
  // Fewer micro-batches than warm-up slots: all forwards first.
  CHECK(render(pipeline_order(PipelineSchedule::kOneFOneB, 4, 0, 2, 1)) == "F0.0 F1.0 B0.0 B1.0");
}

TEST_CASE("layers split as evenly as possible, earlier stages take the remainder",
          "[exec][pipeline]") {
  const auto r = split_layers(10, 4);
  REQUIRE(r.size() == 4);
  CHECK((r[0].begin == 0 && r[0].end == 3));
  CHECK((r[1].begin == 3 && r[1].end == 6));
  CHECK((r[2].begin == 6 && r[2].end == 8));
  CHECK((r[3].begin == 8 && r[3].end == 10));
  // Embedding and loss each take one layer's share of the first and last stage.
  const auto e = split_layers(6, 4, true);
  CHECK((e[0].begin == 0 && e[0].end == 1));
  CHECK((e[3].begin == 5 && e[3].end == 6));
}

// Without a layout the MTP modules join the last stage (Megatron-Core's
// mtp_on_this_rank); a layout's stages hold what it lists, in order.
TEST_CASE("stage layers: MTP modules with the loss, or where the layout says", "[exec][pipeline]") {
  ModelShape m;
  m.layers = 11;  // ten model layers and one MTP module's
  m.mtp_layers = 1;
  ParallelConfig p;
  p.pp = 4;
  auto r = stage_layers(m, p);
  CHECK((r[2].begin == 6 && r[2].end == 8));
  CHECK((r[3].begin == 8 && r[3].end == 11));
  p.layout = {{4, 0, true, false}, {3, 0, false, false}, {3, 0, false, false}, {0, 1, false, true}};
  r = stage_layers(m, p);
  CHECK((r[0].begin == 0 && r[0].end == 4));
  CHECK((r[2].begin == 7 && r[2].end == 10));
  CHECK((r[3].begin == 10 && r[3].end == 11));
}

// Megatron-Core's combined 1F1B without pipelining
// (combined_1f1b.py combined_1f1b_schedule_for_no_pipelining): F(0) alone,
// then B(i) beside F(i+1), then the last backward alone.
TEST_CASE("combined 1F1B, pp = 1: F0, then each backward beside the next forward",
          "[exec][pipeline]") {
  CHECK(render(combined_1f1b_order(PipelineSchedule::kOneFOneB, 1, 0, 4, 1)) ==
        "F0.0 F1.0&B0.0 F2.0&B1.0 F3.0&B2.0 B3.0");
  CHECK(render(combined_1f1b_order(PipelineSchedule::kOneFOneB, 1, 0, 1, 1)) == "F0.0 B0.0");
}

// The interleaved table above with one more warm-up forward (schedules.py
// get_pp_rank_microbatches: num_warmup_microbatches += 1), each steady-state
// forward paired with the backward after it. Stage 3: 5 warm-up forwards, 11
// pairs, 5 backwards.
TEST_CASE("combined 1F1B, interleaved pp=4 vpp=2: one more warm-up, steady state in pairs",
          "[exec][pipeline]") {
  CHECK(render(combined_1f1b_order(PipelineSchedule::kInterleaved, 4, 3, 8, 2)) ==
        "F0.0 F1.0 F2.0 F3.0 F0.1 "
        "F1.1&B0.1 F2.1&B1.1 F3.1&B2.1 F4.0&B3.1 F5.0&B0.0 F6.0&B1.0 F7.0&B2.0 F4.1&B3.0 "
        "F5.1&B4.1 F6.1&B5.1 F7.1&B6.1 "
        "B7.1 B4.0 B5.0 B6.0 B7.0");
  // Stage 0: 11 warm-up forwards, the rest as in the plain table.
  const auto order = combined_1f1b_order(PipelineSchedule::kInterleaved, 4, 0, 8, 2);
  const auto plain = pipeline_order(PipelineSchedule::kInterleaved, 4, 0, 8, 2);
  REQUIRE(order.size() == plain.size());
  int pairs = 0;
  for (const PipelineItem& i : order) pairs += i.paired_with_next ? 1 : 0;
  CHECK(pairs == 16 - 11);
}

// DualPipe.step (dualpipe/dualpipe.py) worked by hand. pp = 2, 4
// micro-batches: micro-batches 0, 1 go down (chunk 0), 2, 3 go up (chunk 1);
// both ranks are middle ranks (no overlap of their first F0 and B1), h = 0.
TEST_CASE("DualPipe, pp=2, 4 micro-batches: the eight steps on each rank", "[exec][pipeline]") {
  CHECK(render(dualpipe_order(2, 0, 4)) == "F0.0 F2.1 F1.0 B2.1 F3.1&B0.0 B3.1 b1.0 W1.0");
  CHECK(render(dualpipe_order(2, 1, 4)) == "F2.1 F0.0 F3.1 B0.0 F1.0&B2.1 B1.0 b3.1 W3.1");
}

// pp = 4, 8 micro-batches. Rank 0 (h = 0): step 1 two F0, step 2 (F0, F1),
// step 3 (b1, W, F1), step 4 one ([F0&B1], [F1&B0]), step 5 (B1, [F1&B0]),
// step 6 (B1, then zero-bubble b0), step 7 (W, b0), step 8 one W. Rank 1 (h =
// 1, a middle rank): step 2 twice, step 4 twice with the first F0 and B1
// apart, step 6 twice with zero bubble from the second B1, step 8 two W.
TEST_CASE("DualPipe, pp=4, 8 micro-batches: hand-worked orders, mirror ranks symmetric",
          "[exec][pipeline]") {
  CHECK(render(dualpipe_order(4, 0, 8)) ==
        "F0.0 F1.0 F2.0 F4.1 b4.1 W4.1 F5.1 F3.0&B5.1 F6.1&B0.0 B6.1 F7.1&B1.0 B7.1 b2.0 W2.0 "
        "b3.0 W3.0");
  CHECK(render(dualpipe_order(4, 1, 8)) ==
        "F0.0 F4.1 F1.0 F5.1 F2.0 B4.1 F6.1&B0.0 F3.0&B5.1 F7.1&B1.0 B6.1 B2.0 b7.1 b3.0 W7.1 "
        "W3.0");
  // Rank pp-1-r runs rank r's order with the directions swapped.
  for (int rank = 0; rank < 4; ++rank) {
    auto mirrored = dualpipe_order(4, 3 - rank, 8);
    for (PipelineItem& i : mirrored) {
      i.chunk = 1 - i.chunk;
      i.microbatch = (i.microbatch + 4) % 8;
    }
    CHECK(render(mirrored) == render(dualpipe_order(4, rank, 8)));
  }
  // Every pass of both directions runs once; every zero-bubble backward gets
  // its weight gradients.
  for (int rank = 0; rank < 4; ++rank) {
    int forwards = 0, backwards = 0, zero_bubble = 0, weights = 0;
    for (const PipelineItem& i : dualpipe_order(4, rank, 16)) {
      forwards += i.kind == PassKind::kForward;
      backwards += i.kind == PassKind::kBackward || i.kind == PassKind::kBackwardInput;
      zero_bubble += i.kind == PassKind::kBackwardInput;
      weights += i.kind == PassKind::kWeightGrad;
    }
    CHECK(forwards == 16);
    CHECK(backwards == 16);
    CHECK(weights == zero_bubble);
  }
}

TEST_CASE("DualPipe places stage r and pp-1-r on rank r", "[exec][pipeline]") {
  ParallelConfig p;
  p.pp = 4;
  p.moe_a2a_overlap = MoeA2aOverlap::kDualPipe;
  CHECK(chunks_per_rank(p) == 2);
  CHECK(stage_count(p) == 4);
  CHECK(virtual_stage_of(p, 1, 0) == 1);
  CHECK(virtual_stage_of(p, 1, 1) == 2);
  CHECK(dualpipe_direction(p, 3, 8) == 0);
  CHECK(dualpipe_direction(p, 4, 8) == 1);
  p.moe_a2a_overlap = MoeA2aOverlap::kOneFOneB;
  p.virtual_stages = 2;
  CHECK(virtual_stage_of(p, 1, 1) == 5);
  CHECK(dualpipe_direction(p, 4, 8) == -1);
}

}  // namespace
}  // namespace moesim::exec
