#include <map>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fmt/format.h>
#include "reports/timeline.h"
#include "reports/training_report.h"

#include "sim/scenario/run.h"

namespace moesim::reports {
namespace {

// OLMoE-1B-7B on one DGX H100 node, two pipeline stages, four EP ranks.
Json small_scenario() {
  return Json::parse(R"({
    "model": "olmoe-1b-7b",
    "cluster": {"preset": "dgx-h100", "nodes": 1},
    "parallel": {"dp": 4, "tp": 1, "pp": 2, "ep": 4, "a2a_overlap_chunks": 2},
    "workload": {"seq_len": 1024, "global_batch": 16},
    "routing": {"generator": "zipf:0.5", "seed": 3}
  })");
}

struct Fixture {
  scenario::TrainingRun run = scenario::run_training(small_scenario());
  OrderedJson report = training_report(run);
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
  CHECK(r["bottleneck"] == f.run.metrics->bottleneck);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    out.push_back(text.substr(start, nl - start));
  }
  return out;
}

TEST_CASE("the summary text states the run's figures", "[reports]") {
  Fixture f;
  const exec::TrainingMetrics& m = *f.run.metrics;
  const std::vector<std::string> l = lines(training_summary(f.run));
  REQUIRE(l.size() >= 7);
  CHECK(l[0] == "moesim: olmoe-1b-7b on 8 GPUs (dp 4 tp 1 pp 2 ep 4)");
  CHECK(l[1] == fmt::format("  step time      {:.4g} s", m.step_time_s));
  CHECK(l[2] == fmt::format("  throughput     {:.4g} tokens/s ({:.4g} per GPU)", m.tokens_per_s,
                            m.tokens_per_s_per_gpu));
  CHECK(l[3] == fmt::format("  MFU            {:.1f}%  ({:.0f} model TFLOP/s per GPU)", 100 * m.mfu,
                            m.model_tflops_per_gpu));
  // The largest share first, named as the breakdown names it.
  double largest = m.breakdown.pipeline_bubble_s;
  std::string name = "pipeline_bubble";
  for (int c = 0; c < exec::kCategoryCount; ++c) {
    if (m.breakdown.exposed_s[c] > largest) {
      largest = m.breakdown.exposed_s[c];
      name = exec::category_name(static_cast<exec::Category>(c));
    }
  }
  CHECK_THAT(l[4], Catch::StartsWith(fmt::format("  time           {} {:.0f}%", name,
                                                 100 * largest / m.step_time_s)));
  CHECK_THAT(l[5], Catch::StartsWith("  memory         "));
  CHECK(l[6] == fmt::format("  experts        max/mean load {:.3g}, drop rate {:.3g}%",
                            f.run.experts.max_over_mean_load, 100 * f.run.experts.drop_rate));
}

TEST_CASE("an out-of-memory run reports its memory and no step", "[reports]") {
  Json doc = small_scenario();
  doc["options"] = {{"reserved_memory_gib", 1000}};
  const scenario::TrainingRun run = scenario::run_training(doc);
  REQUIRE_FALSE(run.simulated());
  const OrderedJson r = training_report(run);
  CHECK(r["status"] == "out_of_memory");
  CHECK(r["step_time_s"].is_null());
  CHECK(r["bottleneck"] == "memory");
  CHECK(r["memory"]["fits"] == false);
  CHECK_THAT(training_summary(run), Catch::Contains("OUT OF MEMORY"));
}

TEST_CASE("the same inputs render a byte-identical report", "[reports]") {
  Fixture a, b;
  CHECK(render_json(a.report) == render_json(b.report));
}

TEST_CASE("timeline slices are valid trace events that never overlap on a track",
          "[reports][timeline]") {
  Fixture f;
  const std::string text =
      chrome_trace(f.run.result.last_graph, f.run.result.steps.back().execution, {});
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
