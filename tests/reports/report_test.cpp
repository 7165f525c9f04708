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

// An MTP module's slices carry its own name, not a layer number past the
// model's (DeepSeek-V3's module would read "L61").
TEST_CASE("timeline names an MTP module's slices MTP1", "[reports][timeline]") {
  Json doc = small_scenario();
  doc["model"] = {{"preset", "olmoe-1b-7b"}, {"mtp_layers", 1}};
  const scenario::TrainingRun run = scenario::run_training(doc);
  REQUIRE(run.simulated());
  TimelineOptions options;
  options.model_layers = run.scenario.setup.model.model_layers();
  REQUIRE(options.model_layers == 16);
  const nlohmann::json trace = nlohmann::json::parse(
      chrome_trace(run.result.last_graph, run.result.steps.back().execution, options));
  int mtp = 0, past = 0;
  for (const auto& ev : trace["traceEvents"]) {
    if (ev["ph"] != "X") continue;
    const std::string name = ev["name"];
    if (name.rfind("MTP1 ", 0) == 0) ++mtp;
    if (name.rfind("L16 ", 0) == 0) ++past;
  }
  CHECK(mtp > 0);
  CHECK(past == 0);
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

// OLMoE on one node with cp 4, pp 2 and two modules offloaded.
Json cp_offload_scenario() {
  return Json::parse(R"({
    "model": "olmoe-1b-7b",
    "cluster": {"preset": "dgx-h100", "nodes": 1},
    "parallel": {"dp": 1, "tp": 1, "cp": 4, "pp": 2, "ep": 4,
                 "offload_activations": ["core_attn", "expert_fc1"]},
    "workload": {"seq_len": 4096, "global_batch": 4},
    "routing": {"generator": "zipf:0.5", "seed": 3}
  })");
}

// Context parallelism and activation offload: the report lists their
// categories (and only then), they add up with the rest, and the timeline
// shows each ring step's transfer on the GPU's "cp comm" track and the copies
// on "offload d2h" / "reload h2d".
TEST_CASE("a context-parallel, offloading run: its categories and its timeline tracks",
          "[reports][timeline][cp]") {
  const Json doc = cp_offload_scenario();
  const scenario::TrainingRun run = scenario::run_training(doc);
  REQUIRE(run.metrics);
  const OrderedJson report = training_report(run);
  double sum = 0;
  for (const auto& [k, v] : report["breakdown"].items()) sum += v.get<double>();
  CHECK(sum == Approx(report["step_time_s"].get<double>()).epsilon(1e-6));
  for (const char* key : {"cp_comm_s", "offload_s", "reload_s"}) {
    INFO(key);
    CHECK(report["breakdown"].contains(key));
    CHECK(report["critical_path"]["seconds_by_category"].contains(key));
  }
  CHECK(report["overlap"]["cp_comm_hidden_s"].get<double>() > 0);
  CHECK(report["overlap"]["offload_hidden_s"].get<double>() > 0);
  CHECK(report["breakdown"]["offload_s"].get<double>() == 0);  // a copy out holds nothing up
  // Runs without the features leave the keys out (their reports keep their bytes).
  const OrderedJson plain = Fixture{}.report;
  for (const char* key : {"cp_comm_s", "offload_s", "reload_s"}) {
    CHECK_FALSE(plain["breakdown"].contains(key));
  }
  CHECK_FALSE(plain["overlap"].contains("cp_comm_hidden_s"));
  CHECK_FALSE(plain["memory"].contains("host_offload_peak_bytes"));
  CHECK_FALSE(plain["memory"]["per_stage"][0].contains("host_offload_bytes"));
  const double host_peak = run.memory.host_offload_peak_bytes;
  CHECK(host_peak > 0);
  CHECK(report["memory"]["host_offload_peak_bytes"].get<double>() ==
        Approx(host_peak).epsilon(1e-4));
  CHECK(report["memory"]["host_capacity_bytes"].get<double>() == 2048e9 / 8);  // dgx-h100 node

  const nlohmann::json trace = nlohmann::json::parse(
      chrome_trace(run.result.last_graph, run.result.steps.back().execution, {}));
  std::map<int, std::string> track_name;  // tid -> name, node 0
  for (const auto& ev : trace["traceEvents"]) {
    if (ev["ph"] == "M" && ev["name"] == "thread_name" && ev["pid"] == 0)
      track_name[ev["tid"].get<int>()] = ev["args"]["name"];
  }
  std::map<std::string, int> slices;  // "<track>|<category>" -> count, GPU 0
  std::map<std::pair<int, int>, std::vector<std::pair<double, double>>> tracks;
  for (const auto& ev : trace["traceEvents"]) {
    if (ev["ph"] != "X") continue;
    tracks[{ev["pid"].get<int>(), ev["tid"].get<int>()}].push_back(
        {ev["ts"].get<double>(), ev["ts"].get<double>() + ev["dur"].get<double>()});
    if (ev["pid"] != 0) continue;
    ++slices[track_name[ev["tid"].get<int>()] + "|" + ev["cat"].get<std::string>()];
  }
  // GPU 0: 4 micro-batches x 8 layers per stage x (3 forward + 4 backward)
  // ring transfers.
  CHECK(slices["GPU 0 cp comm|cp_comm"] == 4 * 8 * (3 + 4));
  CHECK(slices["GPU 0 offload d2h|offload"] > 0);
  CHECK(slices["GPU 0 reload h2d|reload"] == slices["GPU 0 offload d2h|offload"]);
  for (auto& [track, s] : tracks) {
    std::sort(s.begin(), s.end());
    for (size_t i = 1; i < s.size(); ++i) {
      INFO("track " << track.first << "/" << track.second);
      CHECK(s[i].first >= s[i - 1].second - 1e-6);
    }
  }
}

// Offloaded activations live in the nodes' host memory: a node with less
// than its GPUs offload makes the layout not fit, though HBM would hold it.
TEST_CASE("activation offload past the node's host memory is out of memory",
          "[reports][memory][offload]") {
  Json doc = cp_offload_scenario();
  const double per_gpu = scenario::run_training(doc).memory.host_offload_peak_bytes;
  REQUIRE(per_gpu > 0);
  // Half of what the node's 8 GPUs offload.
  doc["cluster"]["node"] = {{"host_memory_gb", per_gpu * 8 / 2 / 1e9}};
  const scenario::TrainingRun run = scenario::run_training(doc);
  CHECK_FALSE(run.metrics);
  CHECK(run.memory.fits_hbm());
  CHECK_FALSE(run.memory.fits());
  const OrderedJson report = training_report(run);
  CHECK(report["status"] == "out_of_memory");
  CHECK(report["memory"]["fits"] == false);
  const std::string summary = training_summary(run);
  CHECK_THAT(summary, Catch::Contains("OUT OF HOST MEMORY"));
  CHECK_THAT(summary, !Catch::Contains("OUT OF MEMORY:"));
  CHECK(std::any_of(run.warnings.begin(), run.warnings.end(), [](const std::string& w) {
    return w.find("out of host memory") != std::string::npos &&
           w.find("node.host_memory_gb") != std::string::npos;
  }));
  const scenario::ScenarioCheck check = scenario::check_scenario(doc);
  CHECK(check.reason_code == "out_of_memory");
  CHECK_THAT(check.reason, Catch::Contains("host memory"));
  // Enough host memory: it runs.
  doc["cluster"]["node"]["host_memory_gb"] = per_gpu * 8 / 1e9 * 1.01;
  CHECK(scenario::run_training(doc).metrics);
}

}  // namespace
}  // namespace moesim::reports
