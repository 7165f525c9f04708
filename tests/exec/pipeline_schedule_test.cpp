// Pipeline schedules against hand-written tables (Megatron-LM's
// forward_backward_pipelining_with_interleaving and 1F1B).

#include "sim/exec/pipeline_schedule.h"

#include <string>

#include <catch2/catch.hpp>

namespace moesim::exec {
namespace {

// "F<mb>.<chunk>" / "B<mb>.<chunk>" per pass, space-separated.
std::string render(const std::vector<PipelineItem>& order) {
  std::string s;
  for (const PipelineItem& i : order) {
    if (!s.empty()) s += ' ';
    s += (i.forward ? "F" : "B") + std::to_string(i.microbatch) + "." + std::to_string(i.chunk);
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

}  // namespace
}  // namespace moesim::exec
