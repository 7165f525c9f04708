// Two-batch overlap in SGLang's stage order (exec/two_batch_overlap.h):
// closed forms on one or two layers worked out by hand.

#include <vector>

#include <catch2/catch.hpp>

#include "sim/exec/two_batch_overlap.h"

namespace moesim::exec {
namespace {

LayerCost moe_layer(double prep, double core, double shared, double expert, double dispatch,
                    double combine) {
  LayerCost l;
  l.attention_prep = prep;
  l.attention_core = core;
  l.shared = shared;
  l.expert = expert;
  l.dispatch = dispatch;
  l.combine = combine;
  l.moe = true;
  return l;
}

TEST_CASE("without communication the two micro-batches' compute runs back to back") {
  const std::vector<LayerCost> a = {moe_layer(1, 2, 1, 3, 0, 0), moe_layer(1, 2, 1, 3, 0, 0)};
  for (const OverlapSchedule s : {OverlapSchedule::kPrefill, OverlapSchedule::kDecode}) {
    const IterationCost c = two_batch_overlap(a, a, s, {});
    CHECK(c.seconds == Approx(2 * 2 * 7.0));
    CHECK(c.dispatch_s == 0);
    CHECK(c.combine_s == 0);
    CHECK(c.attention_s == Approx(12));
    CHECK(c.expert_s == Approx(16));
  }
}

TEST_CASE("decode: a transfer is hidden only as far as the other micro-batch's stage lasts") {
  // A0 A1 A2 B0 A3 B1 A4 B2 B3 B4 with prep 1, core 2, shared 1, experts 3,
  // dispatch 4, combine 5: A's dispatch (3..7) waits 2 after B0; A's combine
  // (10..15) waits 3 after B1; B's dispatch queues behind it (15..19) and
  // waits 3, B's combine (22..27) waits 5. 27 in all.
  const std::vector<LayerCost> a = {moe_layer(1, 2, 1, 3, 4, 5)};
  const IterationCost c = two_batch_overlap(a, a, OverlapSchedule::kDecode, {});
  CHECK(c.seconds == Approx(27));
  CHECK(c.dispatch_s == Approx(5));
  CHECK(c.combine_s == Approx(8));
  CHECK(c.attention_s + c.expert_s + c.other_s == Approx(14));
  // The sum of the parts is the time: nothing counted twice.
  CHECK(c.attention_s + c.expert_s + c.other_s + c.dispatch_s + c.combine_s == Approx(c.seconds));
}

TEST_CASE(
    "prefill: each stage hides the other micro-batch's transfer; the tail waits for the last") {
  // Stages: A[attention 3, launch D] B[attention 3, launch D] A[wait, experts 3,
  // launch M] B[wait, experts 3, launch M] A[shared 1, wait M] B[shared 1, wait M].
  // A's dispatch 3..5 is done when B's attention ends (6); B's 6..8 by the
  // end of A's experts (9); A's combine runs 9..14, B's experts 9..12, A's
  // shared 12..13 then waits to 14; B's combine queues behind A's (14..19):
  // B's shared 14..15, then it waits to 19.
  const std::vector<LayerCost> a = {moe_layer(1, 2, 1, 3, 2, 5)};
  const IterationCost c = two_batch_overlap(a, a, OverlapSchedule::kPrefill, {});
  CHECK(c.seconds == Approx(19));
  CHECK(c.dispatch_s == Approx(0));
  CHECK(c.combine_s == Approx(5));
}

TEST_CASE(
    "prefill: expert GEMMs run on the SMs communication leaves, other compute only while a "
    "transfer is in flight") {
  const std::vector<LayerCost> a = {moe_layer(1, 2, 1, 3, 0, 0)};
  OverlapSlowdown slow;
  slow.deep_gemm = 1.25;
  const IterationCost c = two_batch_overlap(a, a, OverlapSchedule::kPrefill, slow);
  // No transfer in flight ever: only the experts stretch (2 x 3 x 1.25).
  CHECK(c.seconds == Approx(2 * (3 + 1) + 2 * 3 * 1.25));
  slow = {};
  slow.in_flight = 2;
  // A's dispatch of 2 launches at 3 and is in flight while B's attention of 3
  // runs: 2 s at half speed does 1 s of work, the other 2 s at full speed.
  const std::vector<LayerCost> b = {moe_layer(1, 2, 0, 0, 2, 0)};
  const IterationCost d = two_batch_overlap(b, b, OverlapSchedule::kPrefill, slow);
  CHECK(d.attention_s == Approx(3 + 4));
}

TEST_CASE(
    "prefill: the block-FP8 linears run on DeepGEMM's SMs too, in attention, shared experts "
    "and dense layers") {
  // SGLang's whole overlapped forward runs under DeepGEMM's SM budget: with
  // no transfer in flight the DeepGEMM parts (projections 0.5 of 1, shared
  // experts 0.5 of 1, routed experts 3, dense FFN 1 of 2) stretch by 1.25
  // and nothing else does.
  LayerCost moe = moe_layer(1, 2, 1, 3, 0, 0);
  moe.attention_prep_gemm = 0.5;
  moe.shared_gemm = 0.5;
  LayerCost dense;
  dense.attention_prep = 1;
  dense.attention_prep_gemm = 0.5;
  dense.attention_core = 1;
  dense.dense = 2;
  dense.dense_gemm = 1;
  const std::vector<LayerCost> a = {dense, moe};
  OverlapSlowdown slow;
  slow.deep_gemm = 1.25;
  const IterationCost c = two_batch_overlap(a, a, OverlapSchedule::kPrefill, slow);
  const double dense_layer = 0.5 + 0.5 * 1.25 + 1 + 1 + 1 * 1.25;
  const double moe_layer_s = 0.5 + 0.5 * 1.25 + 2 + 0.5 + 0.5 * 1.25 + 3 * 1.25;
  CHECK(c.seconds == Approx(2 * (dense_layer + moe_layer_s)));
  CHECK(c.attention_s == Approx(2 * (0.5 + 0.5 * 1.25 + 1 + 0.5 + 0.5 * 1.25 + 2)));
  // Without the budget (decode's strategy) the split changes nothing.
  const IterationCost d = two_batch_overlap(a, a, OverlapSchedule::kPrefill, {});
  CHECK(d.seconds == Approx(2 * (1 + 1 + 2 + 1 + 2 + 1 + 3)));
}

TEST_CASE("dense layers keep the stage count, so the micro-batches stay in step") {
  LayerCost dense;
  dense.attention_prep = 1;
  dense.attention_core = 1;
  dense.dense = 2;
  const std::vector<LayerCost> a = {dense, moe_layer(1, 2, 1, 3, 0, 0)};
  for (const OverlapSchedule s : {OverlapSchedule::kPrefill, OverlapSchedule::kDecode}) {
    const IterationCost c = two_batch_overlap(a, a, s, {});
    CHECK(c.seconds == Approx(2 * (4 + 7)));
  }
}

}  // namespace
}  // namespace moesim::exec
