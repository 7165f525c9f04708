#include <map>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "reports/timeline.h"
#include "reports/training_report.h"
#include "tests/exec/test_costs.h"

namespace moesim::reports {
namespace {

using exec::testing::even_routing;

double busiest_link(const coll::Collective& c) {
  if (c.ranks.size() <= 1) return 0;
  if (c.op != coll::CollectiveOp::kAllToAllV) return c.bytes / 5e10;
  return exec::testing::busiest_rank_bytes(c, false) / 5e10;
}

struct Fixture {
  exec::TrainingStepSetup setup;
  exec::StepRouting routing{1};
  exec::TrainingResult result;
  OrderedJson report;

  Fixture() {
    setup.model = exec::testing::tiny_moe(4);
    setup.parallel.dp = 4;
    setup.parallel.pp = 2;
    setup.parallel.ep = 4;
    setup.parallel.a2a_overlap_chunks = 2;
    setup.workload.seq_len = 1024;
    setup.workload.global_batch = 16;
    setup.hbm_capacity_bytes = 80e9;
    setup.peak_flops_per_gpu = 1e14;
    for (int l = 0; l < 4; ++l) {
      exec::LayerRouting lr;
      lr.layer = l;
      lr.samples.push_back(even_routing(4, 8, 1024, 2));
      routing[0].push_back(lr);
    }
    const exec::testing::LinearCost cost(1e14, 1e12);
    result = exec::simulate_training(setup, routing, exec::testing::hardware(cost, busiest_link));
    TrainingReportInput in;
    in.resolved_scenario = {{"model", {{"name", "test"}}}};
    in.setup = &setup;
    in.result = &result;
    in.memory =
        exec::estimate_memory(setup.model, setup.parallel, setup.workload, {1024, 1024}, 80e9, 0);
    in.network_model = "analytic";
    report = training_report(in);
  }
};

TEST_CASE("the breakdown adds up to the step time and the summary renders", "[reports]") {
  Fixture f;
  const OrderedJson& r = f.report;
  double sum = 0;
  for (const auto& [k, v] : r["breakdown"].items()) sum += v.get<double>();
  CHECK(sum == Approx(r["step_time_s"].get<double>()).epsilon(1e-6));
  CHECK(r["tokens_per_s"].get<double>() ==
        Approx(16.0 * 1024 / r["step_time_s"].get<double>()).epsilon(1e-6));
  CHECK(r["schema_version"] == kReportSchemaVersion);
  CHECK(r["memory"]["fits"] == true);
  CHECK(r["per_gpu"].size() == 8);
  const std::string summary = training_summary(r);
  CHECK_THAT(summary, Catch::Contains("step time"));
}

TEST_CASE("the same inputs render a byte-identical report", "[reports]") {
  Fixture a, b;
  CHECK(render_json(a.report) == render_json(b.report));
}

TEST_CASE("timeline slices are valid trace events that never overlap on a track",
          "[reports][timeline]") {
  Fixture f;
  const std::string text = chrome_trace(f.result.last_graph, f.result.steps.back().execution, {});
  const nlohmann::json trace = nlohmann::json::parse(text);
  std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> tracks;
  int flows = 0, slices = 0;
  for (const auto& ev : trace["traceEvents"]) {
    const std::string ph = ev["ph"];
    if (ph == "X") {
      ++slices;
      tracks[{ev["pid"].get<int>(), ev["tid"].get<int>()}].push_back(
          {ev["ts"].get<double>(), ev["ts"].get<double>() + ev["dur"].get<double>()});
    }
    if (ph == "s") ++flows;
  }
  CHECK(slices > 100);
  CHECK(flows > 0);  // pipeline transfers and dispatches cross GPUs
  for (auto& [track, s] : tracks) {
    std::sort(s.begin(), s.end());
    for (size_t i = 1; i < s.size(); ++i) {
      INFO("track " << track.first << "/" << track.second);
      CHECK(s[i].first >= s[i - 1].second - 1e-6);
    }
  }
}

}  // namespace
}  // namespace moesim::reports
