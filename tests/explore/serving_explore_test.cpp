// Sweeps and searches over serving (inference) scenarios: the sweep's
// serving columns come from each point's inference report and do not depend
// on threads; the layout search ranks by goodput per GPU, counts rejections by
// reason code and refuses malformed requests with the flag's name.

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include "reports/inference_report.h"
#include "reports/summary.h"
#include "sim/core/error.h"
#include "sim/core/file_io.h"
#include "sim/explore/search_inference.h"
#include "sim/explore/sweep.h"
#include "sim/scenario/inference_run.h"

namespace moesim::explore {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    char name[] = "/tmp/moesim-serving-explore-XXXXXX";
    REQUIRE(mkdtemp(name) != nullptr);
    path = name;
  }
  ~TempDir() { fs::remove_all(path); }
};

// Mixtral-8x7B, 4 x TP2 on one DGX H100 under a short Poisson load (the
// shape of examples/mixtral-8x7b-h100-tp2-poisson.json, fewer requests).
OrderedJson small_serving_sweep(const OrderedJson& axes) {
  const OrderedJson base = OrderedJson::parse(R"({
    "model": "mixtral-8x7b", "cluster": {"preset": "dgx-h100", "nodes": 1},
    "workload": {"mode": "inference"},
    "parallel": {"tp": 2},
    "serving": {"max_batch_size": 64, "chunked_prefill": 1024, "slo": {"ttft_ms": 500, "tpot_ms": 40}},
    "requests": {"count": 120, "arrival": "poisson", "rate_per_s": 10,
                 "input_tokens": 512, "output_tokens": {"dist": "uniform", "min": 16, "max": 64}},
    "routing": {"generator": "zipf:0.8", "seed": 7}})");
  return OrderedJson{{"base", base}, {"axes", axes}};
}

size_t column_index(const reports::Table& t, const std::string& name) {
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (t.columns[i] == name) return i;
  }
  FAIL("no column " << name);
  return 0;
}

double cell(const reports::Table& t, size_t row, const std::string& name) {
  return std::stod(t.rows[row][column_index(t, name)]);
}

TEST_CASE("an inference sweep writes serving columns taken from each point's report",
          "[explore][inference]") {
  const OrderedJson sweep = small_serving_sweep(
      OrderedJson::parse(R"({"requests.rate_per_s": [5, 40], "parallel.tp": [1, 2, 3]})"));
  const std::vector<SweepPoint> points = expand_sweep(sweep, "sweep", ".");
  REQUIRE(points.size() == 6);
  TempDir dir;
  const SweepOutcome outcome = run_sweep(points, dir.path.string(), 2, {}, {});
  CHECK(outcome.invalid == 2);  // tp 3 does not divide the 8 GPUs
  const reports::Table t =
      reports::parse_csv(read_file((dir.path / "summary.csv").string()), "summary.csv");
  REQUIRE(t.rows.size() == 6);
  for (const char* column :
       {"point", "hash", "requests.rate_per_s", "parallel.tp", "status",
        "throughput.output_tokens_per_s", "throughput.output_tokens_per_s_per_gpu",
        "throughput.input_tokens_per_s", "latency.ttft.p50_s", "latency.ttft.p99_s",
        "latency.tpot.p50_s", "latency.tpot.p99_s", "latency.e2e.p99_s", "goodput.requests_per_s",
        "kv_cache.peak_utilisation", "batch.mean", "preemptions", "error", "report"}) {
    column_index(t, column);
  }
  CHECK(std::find(t.columns.begin(), t.columns.end(), "step_time_s") == t.columns.end());
  const size_t status = column_index(t, "status"), error = column_index(t, "error");
  // Product order: rate 5 with tp 1, 2, 3, then rate 40 with the same.
  // One GPU cannot hold Mixtral-8x7B's ~87 GiB of bf16 weights.
  CHECK(t.rows[0][status] == "out_of_memory");
  CHECK(t.rows[0][column_index(t, "latency.ttft.p99_s")].empty());
  CHECK(t.rows[2][status] == "invalid");
  CHECK(t.rows[2][error].find("parallel") != std::string::npos);
  REQUIRE(t.rows[1][status] == "ok");
  REQUIRE(t.rows[4][status] == "ok");
  // Every cell of an ok row is the value its path names in the point's report.
  const size_t report_column = column_index(t, "report");
  for (size_t row : {1, 4}) {
    const OrderedJson report =
        OrderedJson::parse(read_file((dir.path / t.rows[row][report_column]).string()));
    CHECK(report["report_kind"] == "inference");
    CHECK(cell(t, row, "latency.ttft.p99_s") == report["latency"]["ttft"]["p99_s"].get<double>());
    CHECK(cell(t, row, "latency.tpot.p50_s") == report["latency"]["tpot"]["p50_s"].get<double>());
    CHECK(cell(t, row, "throughput.output_tokens_per_s_per_gpu") ==
          report["throughput"]["output_tokens_per_s_per_gpu"].get<double>());
    CHECK(cell(t, row, "goodput.requests_per_s") ==
          report["goodput"]["requests_per_s"].get<double>());
    CHECK(cell(t, row, "requests.completed") == 120);
  }
  // ... and the report is what `moesim run` writes for the point's scenario.
  CHECK(read_file((dir.path / t.rows[4][report_column]).string()) ==
        render_json(reports::inference_report(scenario::run_inference(points[4].scenario))));
  // Eight times the load serves more requests per second and waits longer.
  CHECK(cell(t, 4, "throughput.requests_per_s") > 4 * cell(t, 1, "throughput.requests_per_s"));
  CHECK(cell(t, 4, "latency.ttft.p99_s") >= cell(t, 1, "latency.ttft.p99_s"));
  CHECK(cell(t, 4, "batch.mean") > cell(t, 1, "batch.mean"));
}

TEST_CASE("an inference sweep's summary is the same on one thread, two, and when resumed",
          "[explore][inference]") {
  const std::vector<SweepPoint> points = expand_sweep(
      small_serving_sweep(OrderedJson::parse(R"({"requests.rate_per_s": [5, 20, 60]})")), "sweep",
      ".");
  TempDir one, two;
  run_sweep(points, one.path.string(), 1, {}, {});
  run_sweep(points, two.path.string(), 2, {}, {});
  const std::string csv = read_file((one.path / "summary.csv").string());
  CHECK(csv == read_file((two.path / "summary.csv").string()));
  CHECK(read_file((one.path / "summary.jsonl").string()) ==
        read_file((two.path / "summary.jsonl").string()));
  fs::remove(one.path / "points" / (points[1].hash + ".json"));
  const SweepOutcome resumed = run_sweep(points, one.path.string(), 2, {}, {});
  CHECK(resumed.reused == 2);
  CHECK(read_file((one.path / "summary.csv").string()) == csv);
}

TEST_CASE("explicit points that set different fields give every summary row the same columns",
          "[explore][inference]") {
  // A point that leaves a path alone shows the base's value there.
  OrderedJson sweep{{"base", small_serving_sweep(OrderedJson::object())["base"]}};
  sweep["points"] = OrderedJson::parse(R"([
    {"requests.rate_per_s": 5},
    {"parallel.tp": 4, "serving.max_batch_size": 32},
    {"serving.slo": {"tpot_ms": 25}}])");
  const std::vector<SweepPoint> points = expand_sweep(sweep, "sweep", ".");
  REQUIRE(points.size() == 3);
  TempDir dir;
  run_sweep(points, dir.path.string(), 2, {}, {});
  // parse_csv refuses a row whose cell count differs from the header's.
  const reports::Table t =
      reports::parse_csv(read_file((dir.path / "summary.csv").string()), "summary.csv");
  REQUIRE(t.rows.size() == 3);
  const std::vector<std::string> axes(t.columns.begin() + 2, t.columns.begin() + 6);
  CHECK(axes == std::vector<std::string>{"requests.rate_per_s", "parallel.tp",
                                         "serving.max_batch_size", "serving.slo"});
  CHECK(cell(t, 0, "requests.rate_per_s") == 5);
  CHECK(cell(t, 0, "parallel.tp") == 2);
  CHECK(cell(t, 0, "serving.max_batch_size") == 64);
  CHECK(cell(t, 1, "requests.rate_per_s") == 10);
  CHECK(cell(t, 1, "parallel.tp") == 4);
  CHECK(cell(t, 1, "serving.max_batch_size") == 32);
  const size_t slo = column_index(t, "serving.slo");
  CHECK(Json::parse(t.rows[0][slo]) == Json::parse(R"({"ttft_ms": 500, "tpot_ms": 40})"));
  CHECK(Json::parse(t.rows[2][slo]) == Json::parse(R"({"tpot_ms": 25})"));
  // summary.jsonl has the same keys on every line.
  const std::string jsonl = read_file((dir.path / "summary.jsonl").string());
  std::vector<std::vector<std::string>> keys;
  size_t start = 0;
  while (start < jsonl.size()) {
    const size_t end = jsonl.find('\n', start);
    const OrderedJson row = OrderedJson::parse(jsonl.substr(start, end - start));
    keys.emplace_back();
    for (const auto& [k, v] : row.items()) keys.back().push_back(k);
    start = end + 1;
  }
  REQUIRE(keys.size() == 3);
  CHECK(keys[0] == keys[1]);
  CHECK(keys[1] == keys[2]);
  CHECK(keys[0] == t.columns);
}

TEST_CASE("a sweep mixing training and inference points is refused", "[explore][inference]") {
  const OrderedJson sweep = small_serving_sweep(
      OrderedJson::parse(R"({"workload": [{"mode": "inference"}, {"seq_len": 512}]})"));
  CHECK_THROWS_WITH(
      expand_sweep(sweep, "mixed.json", "."),
      Catch::Contains("mixed.json: point 1") && Catch::Contains("all training or all inference"));
}

InferenceSearchRequest small_search() {
  InferenceSearchRequest r;
  r.model = "mixtral-8x7b";
  r.cluster = "dgx-h100";
  r.gpus = 8;
  r.concurrency = 64;
  r.requests = 96;
  r.input_tokens = 256;
  r.output_tokens = 32;
  r.slo_tpot_ms = 30;
  r.max_batch_sizes = {64};
  return r;
}

TEST_CASE("the serving layout search ranks by goodput per GPU and counts rejections",
          "[explore][inference][search]") {
  const InferenceSearchRequest r = small_search();
  const InferenceSearchResult result = search_inference_layouts(r, {}, {});
  REQUIRE(result.ranking.size() >= 2);
  int rejected = 0;
  for (const auto& [code, count] : result.rejected) rejected += count;
  CHECK(result.enumerated == static_cast<int>(result.ranking.size()) + rejected);
  // One GPU per instance cannot hold Mixtral-8x7B's bf16 weights.
  CHECK(result.rejected.count("out_of_memory") == 1);
  CHECK(result.ranking[0].goodput_requests_per_s_per_gpu >=
        result.ranking[1].goodput_requests_per_s_per_gpu);
  std::set<std::tuple<int, int, int, bool>> layouts;
  for (size_t i = 0; i < result.ranking.size(); ++i) {
    const InferenceCandidate& c = result.ranking[i];
    const InferenceLayout& l = c.layout;
    CHECK(l.instances * l.tp * l.attention_dp == 8);
    if (l.attention_dp > 1) CHECK(l.ep == l.tp * l.attention_dp);
    CHECK((l.two_batch_overlap ? l.ep > 1 : true));
    CHECK(layouts.insert({l.tp, l.attention_dp, l.ep, l.two_batch_overlap}).second);
    CHECK(c.goodput_requests_per_s_per_gpu * 8 == Approx(c.goodput_requests_per_s));
    if (i == 0) continue;
    const InferenceCandidate& before = result.ranking[i - 1];
    CHECK(before.goodput_requests_per_s_per_gpu >= c.goodput_requests_per_s_per_gpu);
    if (before.goodput_requests_per_s_per_gpu == c.goodput_requests_per_s_per_gpu) {
      CHECK(before.output_tokens_per_s_per_gpu >= c.output_tokens_per_s_per_gpu);
    }
  }
  // A layout that meets the SLO less often has less goodput: the best
  // meets it at least as often as the worst.
  CHECK(result.ranking.front().slo_attainment >= result.ranking.back().slo_attainment);
  // The first row's figures are those of a separate run of its scenario.
  const scenario::InferenceRun best = scenario::run_inference(result.ranking[0].scenario);
  REQUIRE(best.metrics);
  CHECK(best.metrics->goodput_requests_per_s_per_gpu ==
        result.ranking[0].goodput_requests_per_s_per_gpu);
  CHECK(best.metrics->tpot.p99_s == result.ranking[0].tpot_p99_s);
}

TEST_CASE("the serving layout search is deterministic across thread counts",
          "[explore][inference][search]") {
  InferenceSearchRequest r = small_search();
  r.jobs = 1;
  const InferenceSearchResult a = search_inference_layouts(r, {}, {});
  r.jobs = 2;
  const InferenceSearchResult b = search_inference_layouts(r, {}, {});
  REQUIRE(a.ranking.size() == b.ranking.size());
  CHECK(a.rejected == b.rejected);
  for (size_t i = 0; i < a.ranking.size(); ++i) {
    CHECK(a.ranking[i].scenario == b.ranking[i].scenario);
    CHECK(a.ranking[i].goodput_requests_per_s_per_gpu ==
          b.ranking[i].goodput_requests_per_s_per_gpu);
  }
}

// tiny-moe on two DGX H100 nodes, lengths spread, three times the
// concurrency in requests: a steady closed loop, about a second to search.
InferenceSearchRequest two_node_search() {
  InferenceSearchRequest r;
  r.model = "tiny-moe";
  r.cluster = "dgx-h100";
  r.gpus = 16;
  r.concurrency = 256;
  r.requests = 768;
  r.input_tokens = 128;
  r.input_tokens_max = 384;
  r.output_tokens = 16;
  r.output_tokens_max = 48;
  r.slo_tpot_ms = 5;
  r.max_batch_sizes = {64};
  return r;
}

TEST_CASE("the serving layout search adds prefill/decode splits of whole nodes on request",
          "[explore][inference][search]") {
  InferenceSearchRequest r = two_node_search();
  r.redundant_experts = {0, 8};
  const InferenceSearchResult colocated = search_inference_layouts(r, {}, {});
  r.disaggregation = true;
  const InferenceSearchResult result = search_inference_layouts(r, {}, {});
  // Two nodes split one way (1 + 1), one instance shape per role, overlap
  // off/on, two replica counts: four more layouts, all of them simulated.
  CHECK(result.enumerated == colocated.enumerated + 4);
  CHECK(result.rejected == colocated.rejected);
  CHECK(result.warnings.empty());
  int split = 0;
  std::set<std::pair<bool, int>> choices;
  for (const InferenceCandidate& c : result.ranking) {
    const InferenceLayout& l = c.layout;
    if (!l.disaggregated) {
      // Replicas only where there is an all-to-all to balance.
      if (l.ep == 1) CHECK(l.redundant_experts == 0);
      continue;
    }
    ++split;
    CHECK(choices.insert({l.two_batch_overlap, l.redundant_experts}).second);
    for (const InferenceInstances* role : {&l.prefill, &l.decode}) {
      CHECK(role->nodes == 1);
      CHECK(role->tp == 1);
      CHECK(role->attention_dp == 8);
      CHECK(role->ep == 8);
      CHECK(role->instances == 1);
    }
    const Json& d = c.scenario["parallel"]["disaggregation"];
    CHECK(d["prefill"]["nodes"] == 1);
    CHECK(d["decode"]["parallel"]["ep"] == 8);
    CHECK(c.scenario.contains("gating") == (l.redundant_experts > 0));
    if (l.redundant_experts > 0) CHECK(c.scenario["gating"]["redundant_experts"] == 8);
    // The figures are those of a separate run of the layout's scenario.
    const scenario::InferenceRun run = scenario::run_inference(c.scenario);
    REQUIRE(run.metrics);
    CHECK(run.metrics->goodput_requests_per_s_per_gpu == c.goodput_requests_per_s_per_gpu);
    CHECK(run.metrics->output_tokens_per_s_per_gpu == c.output_tokens_per_s_per_gpu);
  }
  CHECK(split == 4);
  // Every layout draws the same spread lengths.
  const Json& load = result.ranking.front().scenario["requests"];
  CHECK(load["input_tokens"] == Json::parse(R"({"dist": "uniform", "min": 128, "max": 384})"));
  CHECK(load["output_tokens"] == Json::parse(R"({"dist": "uniform", "min": 16, "max": 48})"));
}

TEST_CASE("the serving layout search warns of a load that is a burst or runs in waves",
          "[explore][inference][search]") {
  // small_search: 96 requests, 64 at once, every output 32 tokens.
  const InferenceSearchResult result = search_inference_layouts(small_search(), {}, {});
  REQUIRE(result.warnings.size() == 2);
  CHECK_THAT(result.warnings[0],
             Catch::StartsWith("--requests (96) is under twice --concurrency (64)"));
  CHECK_THAT(result.warnings[1], Catch::StartsWith("--output-tokens is one length"));
  InferenceSearchRequest open = small_search();
  open.concurrency = 0;
  open.rate_per_s = 50;
  CHECK(search_inference_layouts(open, {}, {}).warnings.empty());
}

TEST_CASE("the serving layout search names the flag of a malformed request",
          "[explore][inference][search]") {
  InferenceSearchRequest both = small_search();
  both.rate_per_s = 10;
  CHECK_THROWS_WITH(search_inference_layouts(both, {}, {}),
                    Catch::Contains("--requests-rate / --concurrency: give exactly one"));
  InferenceSearchRequest neither = small_search();
  neither.concurrency = 0;
  CHECK_THROWS_WITH(search_inference_layouts(neither, {}, {}), Catch::Contains("give exactly one"));
  InferenceSearchRequest no_slo = small_search();
  no_slo.slo_tpot_ms = 0;
  CHECK_THROWS_WITH(search_inference_layouts(no_slo, {}, {}), Catch::StartsWith("--slo-tpot-ms"));
  InferenceSearchRequest partial_node = small_search();
  partial_node.gpus = 12;
  CHECK_THROWS_WITH(search_inference_layouts(partial_node, {}, {}),
                    Catch::Contains("--gpus: 12 is not a multiple of the node size 8"));
  InferenceSearchRequest dtype = small_search();
  dtype.dtype = "fp16";
  CHECK_THROWS_AS(search_inference_layouts(dtype, {}, {}), Error);
  InferenceSearchRequest tokens = small_search();
  tokens.output_tokens = 0;
  CHECK_THROWS_WITH(search_inference_layouts(tokens, {}, {}), Catch::StartsWith("--output-tokens"));
  InferenceSearchRequest range = small_search();
  range.input_tokens_max = 100;
  CHECK_THROWS_WITH(
      search_inference_layouts(range, {}, {}),
      Catch::Contains("--input-tokens: the range's maximum 100 is below its minimum"));
  InferenceSearchRequest replicas = small_search();
  replicas.redundant_experts = {0, -1};
  CHECK_THROWS_WITH(search_inference_layouts(replicas, {}, {}),
                    Catch::StartsWith("--redundant-experts: expected counts in [0, "));
  replicas.redundant_experts.clear();
  CHECK_THROWS_WITH(search_inference_layouts(replicas, {}, {}),
                    Catch::StartsWith("--redundant-experts: give at least one"));
  InferenceSearchRequest too_many = two_node_search();
  too_many.disaggregation = true;
  too_many.max_layouts = 10;
  CHECK_THROWS_WITH(search_inference_layouts(too_many, {}, {}),
                    Catch::StartsWith("--max-layouts: the search has more than 10 layouts"));
  too_many.max_layouts = kMaxServingLayouts + 1;
  CHECK_THROWS_WITH(search_inference_layouts(too_many, {}, {}),
                    Catch::StartsWith("--max-layouts: expected an integer in [1, 200000]"));
}

}  // namespace
}  // namespace moesim::explore
