// The request log (`moesim run --request-log`): every request once, in the
// scenario's order, with the latencies the report's statistics count.

#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "reports/request_log.h"
#include "sim/core/file_io.h"
#include "sim/exec/serving_metrics.h"

namespace moesim::reports {
namespace {

// tiny-moe on one GPU under a Poisson load, with an SLO some requests miss.
Json serving_scenario() {
  return Json::parse(R"({
    "model": "tiny-moe",
    "cluster": {"preset": "dgx-h100", "nodes": 1, "node": {"gpus_per_node": 1}},
    "workload": {"mode": "inference"},
    "parallel": {"tp": 1},
    "serving": {"max_batch_size": 8, "slo": {"ttft_ms": 2}},
    "requests": {"count": 60, "arrival": "poisson", "rate_per_s": 4000, "seed": 3,
                 "input_tokens": {"dist": "uniform", "min": 16, "max": 512},
                 "output_tokens": {"dist": "uniform", "min": 1, "max": 24}}
  })");
}

// The request log write_request_log writes for `run`.
std::string request_log(const scenario::InferenceRun& run) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("moesim-request-log-" + std::to_string(getpid()) + ".jsonl"))
                               .string();
  write_request_log(run, path);
  std::string log = read_file(path);
  std::remove(path.c_str());
  return log;
}

std::vector<Json> parse_lines(const std::string& log) {
  std::vector<Json> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

TEST_CASE("the request log holds every request once with the report's latencies",
          "[reports][request_log]") {
  const scenario::InferenceRun run = scenario::run_inference(serving_scenario());
  REQUIRE(run.simulated());
  const exec::ServingMetrics& m = *run.metrics;
  const std::string log = request_log(run);
  REQUIRE(!log.empty());
  CHECK(log.back() == '\n');
  const std::vector<Json> lines = parse_lines(log);
  const auto& requests = run.scenario.requests.requests;
  REQUIRE(lines.size() == requests.size());

  int64_t generated = 0, slo_met = 0, tpots = 0;
  std::vector<double> ttft;
  for (size_t i = 0; i < lines.size(); ++i) {
    const Json& l = lines[i];
    INFO(l.dump());
    CHECK(l["request"] == i);
    CHECK(l["input_tokens"] == requests[i].input_tokens);
    CHECK(l["output_tokens"] == requests[i].output_tokens);
    CHECK(l["generated"] == requests[i].output_tokens);  // mixed instances: all of them
    const double arrival = l["arrival_s"], first = l["first_token_s"], finish = l["finish_s"];
    CHECK(l["ttft_s"].get<double>() == first - arrival);
    CHECK(l["e2e_s"].get<double>() == finish - arrival);
    CHECK(first >= arrival);
    CHECK(finish >= first);
    // TPOT is there exactly when more than one token came.
    CHECK(l["tpot_s"].is_null() == (l["generated"].get<int64_t>() <= 1));
    tpots += l["tpot_s"].is_null() ? 0 : 1;
    generated += l["generated"].get<int64_t>();
    slo_met += l["slo_met"].get<bool>() ? 1 : 0;
    ttft.push_back(l["ttft_s"]);
  }
  CHECK(generated == m.output_tokens);
  CHECK(slo_met == m.slo_met);
  CHECK(slo_met > 0);
  CHECK(slo_met < m.completed);  // the SLO is tight enough to tell
  CHECK(tpots == m.tpot.count);
  std::sort(ttft.begin(), ttft.end());
  CHECK(exec::nearest_rank(ttft, 0.5) == m.ttft.p50_s);
  CHECK(exec::nearest_rank(ttft, 0.99) == m.ttft.p99_s);
}

TEST_CASE("without an SLO the request log has no slo_met", "[reports][request_log]") {
  Json doc = serving_scenario();
  doc["serving"].erase("slo");
  const scenario::InferenceRun run = scenario::run_inference(doc);
  const std::vector<Json> lines = parse_lines(request_log(run));
  REQUIRE(lines.size() == 60);
  for (const Json& l : lines) CHECK_FALSE(l.contains("slo_met"));
}

TEST_CASE("an out-of-memory run has no request log", "[reports][request_log]") {
  Json doc = serving_scenario();
  doc["model"] = "deepseek-v3";
  const scenario::InferenceRun run = scenario::run_inference(doc);
  REQUIRE_FALSE(run.simulated());
  CHECK(request_log(run).empty());
}

TEST_CASE("the request log is byte-identical run after run", "[reports][request_log]") {
  const scenario::InferenceRun a = scenario::run_inference(serving_scenario());
  const scenario::InferenceRun b = scenario::run_inference(serving_scenario());
  const std::string log = request_log(a);
  CHECK(!log.empty());
  CHECK(log == request_log(b));
}

}  // namespace
}  // namespace moesim::reports
