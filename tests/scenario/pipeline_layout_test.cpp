// parallel.pipeline_layout, Megatron-Core's --pipeline-model-parallel-layout:
// the syntax unrolled as Megatron-Core unrolls it, each of its checks by
// name, and the MTP modules it places.

#include "sim/scenario/pipeline_layout.h"

#include <catch2/catch.hpp>

#include "sim/exec/pipeline_schedule.h"
#include "sim/scenario/routing_plan.h"
#include "sim/scenario/run.h"
#include "sim/scenario/scenario.h"
#include "sim/scenario/strategy.h"

namespace moesim::scenario {
namespace {

using exec::LayoutStage;

std::string parse_error(const std::string& text) {
  try {
    parse_pipeline_layout(text, "parallel.pipeline_layout");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Mixtral with one MTP module on 2 nodes, pp 2 x 2 virtual stages.
Json mixtral_mtp(const std::string& layout) {
  return Json{{"model", {{"preset", "mixtral-8x7b"}, {"mtp_layers", 1}}},
              {"cluster", {{"preset", "dgx-h100"}, {"nodes", 2}}},
              {"parallel",
               {{"dp", 8},
                {"pp", 2},
                {"ep", 8},
                {"pipeline_schedule", "interleaved"},
                {"virtual_stages", 2},
                {"pipeline_layout", layout}}},
              {"workload", {{"seq_len", 4096}, {"global_batch", 16}}}};
}

// The run of `layout` with a 32-layer tiny-moe (small enough to fit) and
// `mtp_layers` modules; no layout at all when empty.
Json tiny(const std::string& layout, int mtp_layers) {
  Json doc = mixtral_mtp(layout);
  doc["model"] = {{"preset", "tiny-moe"}, {"layers", 32}, {"mtp_layers", mtp_layers}};
  if (layout.empty()) doc["parallel"].erase("pipeline_layout");
  return doc;
}

std::string rejection(const Json& doc) {
  try {
    resolve_scenario(doc);
  } catch (const InvalidStrategy& e) {
    return std::string(e.code()) + ": " + e.what();
  }
  return "";
}

TEST_CASE("pipeline layouts unroll as Megatron-Core's parse_str_to_list does",
          "[scenario][layout]") {
  // The Megatron-Core MoE report's DeepSeek-V3 layout (Table 17).
  const auto core = parse_pipeline_layout("Et*3|(tt|)*29m|L", "p");
  REQUIRE(core.size() == 32);
  CHECK(core[0] == LayoutStage{3, 0, true, false});
  for (int v = 1; v <= 29; ++v) CHECK(core[v] == LayoutStage{2, 0, false, false});
  CHECK(core[30] == LayoutStage{0, 1, false, false});
  CHECK(core[31] == LayoutStage{0, 0, false, true});
  // Megatron-Bridge's H100 recipe: the module shares the last stage with the loss.
  const auto bridge = parse_pipeline_layout("Et|(tt|)*30mL", "p");
  REQUIRE(bridge.size() == 32);
  CHECK(bridge[31] == LayoutStage{0, 1, false, true});
  // Commas are cosmetic; a group may hold "|" anywhere.
  CHECK(parse_pipeline_layout("Ett,(|tt)*2,|L", "p") ==
        std::vector<LayoutStage>{
            {2, 0, true, false}, {2, 0, false, false}, {2, 0, false, false}, {0, 0, false, true}});
}

TEST_CASE("bad pipeline layouts are refused with what is wrong", "[scenario][layout]") {
  CHECK_THAT(parse_error("Etx|L"), Catch::Contains("parallel.pipeline_layout: 'x' is not a layer"));
  CHECK_THAT(parse_error("E(tt|L"), Catch::Contains("'(' without its ')'"));
  CHECK_THAT(parse_error("E((t)*2)*2|L"), Catch::Contains("groups do not nest"));
  CHECK_THAT(parse_error("E(tt)|L"), Catch::Contains("must be followed by *n"));
  CHECK_THAT(parse_error("Et*|L"), Catch::Contains("must be followed by a count"));
  CHECK_THAT(parse_error("E*2t|L"), Catch::Contains("\"E\" (the embedding) must come first"));
  CHECK_THAT(parse_error("tE|L"), Catch::Contains("must come first"));
  CHECK_THAT(parse_error("Et|Lt"), Catch::Contains("must come last"));
  CHECK_THAT(parse_error("Etmt|L"), Catch::Contains("every \"m\" must follow every \"t\""));
  CHECK_THAT(parse_error("E(t)*99999999|L"), Catch::Contains("over 1000000"));
  CHECK_THAT(parse_error("E(tttttttttt)*200000|L"), Catch::Contains("unrolls past"));
}

TEST_CASE("pipeline layouts are checked against the model and the pipeline", "[scenario][layout]") {
  // 32 layers and the module in the last stage, with the loss: accepted.
  CHECK(rejection(mixtral_mtp("Et*8|t*8|t*8|t*8mL")) == "");
  CHECK_THAT(rejection(mixtral_mtp("Et*16|t*16mL")),
             Catch::Contains("pipeline_layout: parallel.pipeline_layout: 2 virtual stages, "
                             "but pp x virtual_stages = 2 x 2 = 4"));
  CHECK_THAT(rejection(mixtral_mtp("Et*8|t*8|t*8|t*7mL")),
             Catch::Contains("31 \"t\", but the model has 32 layers"));
  CHECK_THAT(rejection(mixtral_mtp("Et*8|t*8|t*8|t*8L")),
             Catch::Contains("0 \"m\", but the model trains 1 MTP modules"));
  // Virtual stage v is pipeline rank v mod 2's chunk v / 2: stage 1 is rank
  // 1's first chunk, stage 2 rank 0's last.
  CHECK_THAT(rejection(mixtral_mtp("Et*8|t*8m|t*8|t*8L")),
             Catch::Contains("in virtual stage 1, which is not its pipeline rank's last"));
  CHECK(rejection(mixtral_mtp("Et*16|t*16|m|L")) == "");
  CHECK_THAT(rejection(mixtral_mtp("Et*8|t*8|t*8m|t*8L")),
             Catch::Contains("every \"m\" must follow every \"t\""));
  CHECK_THAT(rejection(mixtral_mtp("Et*16|t*16||mL")), Catch::Contains("virtual stage 2 is empty"));
  CHECK_THAT(rejection(mixtral_mtp("t*8|Et*8|t*8|t*8mL")),
             Catch::Contains("\"E\" must begin the first stage"));
  Json two = mixtral_mtp("Et*8|t*8|t*8|t*8mmL");
  two["model"]["mtp_layers"] = 2;
  CHECK(rejection(two) == "");
  two["parallel"]["pipeline_layout"] = "Et*8|t*8|t*8m|t*8mL";
  CHECK_THAT(rejection(two), Catch::Contains("every \"m\" must follow every \"t\""));
  two["parallel"]["pipeline_layout"] = "Et*8|t*8|t*16m|mL";
  CHECK_THAT(rejection(two), Catch::Contains("the MTP modules must share one virtual stage"));
  // The layout places the embedding and the loss itself.
  Json both = mixtral_mtp("Et*8|t*8|t*8|t*8mL");
  both["parallel"]["account_for_embedding_and_loss"] = true;
  CHECK_THROWS_WITH(resolve_scenario(both),
                    Catch::Contains("parallel.account_for_embedding_and_loss"));
}

// End to end: the module's MoE layer is routed (layer 32 after the model's
// 0-31) and its work lands on pipeline rank 1, which holds the last stage.
TEST_CASE("a training step runs the MTP module where the layout puts it", "[scenario][layout]") {
  const TrainingRun run = run_training(tiny("Et*8|t*8|t*8|t*8mL", 1));
  REQUIRE(run.simulated());
  REQUIRE(run.experts.layers.size() == 33);
  CHECK(run.experts.layers.back().layer == 32);
  CHECK(run.scenario.setup.model.layers == 33);
  const double step = run.metrics->step_time_s;
  CHECK(run_training(tiny("Et*8|t*8|t*8|t*8mL", 1)).metrics->step_time_s == step);
  // Without a layout the module joins the same last stage.
  CHECK(run_training(tiny("", 1)).metrics->step_time_s == step);
  // Its work is on pipeline rank 1 (GPUs 8-15, pp outermost) only.
  const TrainingRun plain = run_training(tiny("", 0));
  const auto busy = [](const TrainingRun& r, int gpu) {
    return r.result.steps[0].execution.per_gpu[gpu].busy_s;
  };
  CHECK(busy(run, 0) == Approx(busy(plain, 0)).epsilon(1e-9));
  CHECK(busy(run, 8) > busy(plain, 8) * 1.04);  // a 33rd layer of 32, and more
  CHECK(plain.metrics->step_time_s < step);
}

}  // namespace
}  // namespace moesim::scenario
