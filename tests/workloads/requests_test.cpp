// Request loads for serving (workloads/requests.h): seeded draws, lengths in
// their bounds with the moments asked for, Poisson gaps of mean 1/rate, and
// every malformed field or trace line named in one line.

#include "workloads/requests.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sim/core/error.h"

namespace moesim::workloads {
namespace {

namespace fs = std::filesystem;

Json poisson(int count, double rate_per_s, Json input, Json output, int seed = 1) {
  return Json{{"count", count},        {"arrival", "poisson"},    {"rate_per_s", rate_per_s},
              {"input_tokens", input}, {"output_tokens", output}, {"seed", seed}};
}

Json uniform(int64_t min, int64_t max) {
  return Json{{"dist", "uniform"}, {"min", min}, {"max", max}};
}

Json moments(const std::string& dist, double mean, double std) {
  return Json{{"dist", dist}, {"mean", mean}, {"std", std}};
}

std::vector<int64_t> inputs(const RequestLoad& load) {
  std::vector<int64_t> out;
  for (const Request& r : load.requests) out.push_back(r.input_tokens);
  return out;
}

std::vector<int64_t> outputs(const RequestLoad& load) {
  std::vector<int64_t> out;
  for (const Request& r : load.requests) out.push_back(r.output_tokens);
  return out;
}

struct Moments {
  double mean = 0, std = 0;
};
template <class T>
Moments moments_of(const std::vector<T>& xs) {
  Moments m;
  for (const T x : xs) m.mean += static_cast<double>(x);
  m.mean /= static_cast<double>(xs.size());
  for (const T x : xs)
    m.std += (static_cast<double>(x) - m.mean) * (static_cast<double>(x) - m.mean);
  m.std = std::sqrt(m.std / static_cast<double>(xs.size() - 1));
  return m;
}

std::string error_of(const Json& spec) {
  try {
    parse_request_load(spec, "requests");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("request loads are seeded: the same seed draws the same requests and another differs",
          "[workloads][requests]") {
  const Json spec = poisson(500, 10, moments("lognormal", 1024, 512), uniform(1, 512), 7);
  const RequestLoad a = parse_request_load(spec, "requests");
  const RequestLoad b = parse_request_load(spec, "requests");
  REQUIRE(a.requests.size() == 500);
  for (size_t i = 0; i < a.requests.size(); ++i) {
    CHECK(a.requests[i].arrival_s == b.requests[i].arrival_s);
    CHECK(a.requests[i].input_tokens == b.requests[i].input_tokens);
    CHECK(a.requests[i].output_tokens == b.requests[i].output_tokens);
  }
  Json reseeded = spec;
  reseeded["seed"] = 8;
  const RequestLoad c = parse_request_load(reseeded, "requests");
  CHECK(inputs(c) != inputs(a));
  CHECK(outputs(c) != outputs(a));
  CHECK(c.requests.back().arrival_s != a.requests.back().arrival_s);
  // One stream per purpose: other output lengths leave arrivals and prompts alone.
  Json other_outputs = spec;
  other_outputs["output_tokens"] = moments("normal", 100, 30);
  const RequestLoad d = parse_request_load(other_outputs, "requests");
  CHECK(inputs(d) == inputs(a));
  CHECK(d.requests.back().arrival_s == a.requests.back().arrival_s);
  CHECK(outputs(d) != outputs(a));
}

TEST_CASE("request lengths stay in their bounds and follow the moments asked for",
          "[workloads][requests]") {
  const int n = 20000;
  SECTION("fixed") {
    const RequestLoad load = parse_request_load(poisson(100, 1, 333, 7), "requests");
    for (const Request& r : load.requests) {
      CHECK(r.input_tokens == 333);
      CHECK(r.output_tokens == 7);
    }
  }
  SECTION("uniform: every value in [min, max], both ends drawn, mean in the middle") {
    const RequestLoad load = parse_request_load(poisson(n, 1, uniform(10, 20), uniform(5, 5)), "r");
    std::vector<int> seen(21, 0);
    for (const Request& r : load.requests) {
      REQUIRE(r.input_tokens >= 10);
      REQUIRE(r.input_tokens <= 20);
      ++seen[r.input_tokens];
      CHECK(r.output_tokens == 5);
    }
    for (int v = 10; v <= 20; ++v) CHECK(seen[v] > n / 11 / 2);
    CHECK(moments_of(inputs(load)).mean == Approx(15).epsilon(0.01));
  }
  SECTION("lognormal: the mean and standard deviation of the lengths") {
    const RequestLoad load =
        parse_request_load(poisson(n, 1, moments("lognormal", 1024, 512), 1), "r");
    const Moments m = moments_of(inputs(load));
    CHECK(m.mean == Approx(1024).epsilon(0.02));
    CHECK(m.std == Approx(512).epsilon(0.05));
    for (const Request& r : load.requests) REQUIRE(r.input_tokens >= 1);
  }
  SECTION("normal: its moments, clipped to at least one token") {
    const RequestLoad load = parse_request_load(
        poisson(n, 1, moments("normal", 2000, 100), moments("normal", 5, 50)), "r");
    const Moments m = moments_of(inputs(load));
    CHECK(m.mean == Approx(2000).epsilon(0.01));
    CHECK(m.std == Approx(100).epsilon(0.05));
    int64_t ones = 0;
    for (const Request& r : load.requests) {
      REQUIRE(r.output_tokens >= 1);
      ones += r.output_tokens == 1;
    }
    CHECK(ones > n / 3);  // about half the draws fall below 1 and are clipped
  }
  SECTION("a huge normal is clipped to the longest request") {
    const RequestLoad load =
        parse_request_load(poisson(100, 1, moments("normal", 4e6, 1e6), 1), "r");
    for (const Request& r : load.requests) REQUIRE(r.input_tokens <= kMaxRequestTokens);
  }
}

TEST_CASE("Poisson arrivals have exponential gaps of mean 1/rate", "[workloads][requests]") {
  const int n = 20000;
  const double rate_per_s = 40;
  const RequestLoad load = parse_request_load(poisson(n, rate_per_s, 64, 8, 3), "requests");
  CHECK(load.arrival == RequestLoad::Arrival::kPoisson);
  CHECK(load.rate_per_s == rate_per_s);
  std::vector<double> gaps;
  double last = 0;
  for (const Request& r : load.requests) {
    REQUIRE(r.arrival_s >= last);
    gaps.push_back(r.arrival_s - last);
    last = r.arrival_s;
  }
  const Moments m = moments_of(gaps);
  // Standard error of the mean: (1/rate) / sqrt(n) = 0.7%.
  CHECK(m.mean == Approx(1 / rate_per_s).epsilon(0.03));
  CHECK(m.std == Approx(1 / rate_per_s).epsilon(0.05));  // exponential: std = mean
  // Memoryless: P(gap > mean) = 1/e.
  int64_t long_gaps = 0;
  for (const double g : gaps) long_gaps += g > 1 / rate_per_s;
  CHECK(static_cast<double>(long_gaps) / n == Approx(std::exp(-1.0)).epsilon(0.03));
}

TEST_CASE("a closed loop keeps its concurrency and issues every request at time zero",
          "[workloads][requests]") {
  const RequestLoad load = parse_request_load({{"count", 12},
                                               {"arrival", "closed"},
                                               {"concurrency", 4},
                                               {"input_tokens", 100},
                                               {"output_tokens", 10}},
                                              "requests");
  CHECK(load.arrival == RequestLoad::Arrival::kClosed);
  CHECK(load.concurrency == 4);
  REQUIRE(load.requests.size() == 12);
  for (const Request& r : load.requests) CHECK(r.arrival_s == 0);
  const Json j = request_load_json(load, {{"count", 12}});
  CHECK(j["resolved"]["requests"] == 12);
  CHECK(j["resolved"]["input_tokens"] == 1200);
  CHECK(j["resolved"]["output_tokens"] == 120);
}

TEST_CASE("bad request specs name their field in one line", "[workloads][requests]") {
  auto check_names = [](const Json& spec, const std::string& field) {
    const std::string e = error_of(spec);
    INFO(spec.dump() << " -> " << e);
    CHECK_THAT(e, Catch::Contains(field));
    CHECK(e.find('\n') == std::string::npos);
  };
  check_names(poisson(4, 0, 64, 4), "requests.rate_per_s");
  check_names(poisson(4, -1, 64, 4), "requests.rate_per_s");
  Json no_rate = poisson(4, 1, 64, 4);
  no_rate.erase("rate_per_s");
  check_names(no_rate, "requests.rate_per_s");
  check_names({{"count", 4},
               {"arrival", "closed"},
               {"concurrency", 0},
               {"input_tokens", 64},
               {"output_tokens", 4}},
              "requests.concurrency");
  check_names({{"count", 4}, {"arrival", "closed"}, {"input_tokens", 64}, {"output_tokens", 4}},
              "requests.concurrency");
  check_names(poisson(0, 1, 64, 4), "requests.count");
  check_names(poisson(4, 1, 0, 4), "requests.input_tokens");
  check_names(poisson(4, 1, 64, -2), "requests.output_tokens");
  check_names(poisson(4, 1, kMaxRequestTokens + 1, 4), "requests.input_tokens");
  check_names(poisson(4, 1, uniform(10, 5), 4), "requests.input_tokens.max");
  check_names(poisson(4, 1, Json{{"dist", "gamma"}, {"mean", 3}}, 4), "requests.input_tokens.dist");
  check_names(poisson(4, 1, moments("normal", 0, 1), 4), "requests.input_tokens.mean");
  Json unknown = poisson(4, 1, 64, 4);
  unknown["rate"] = 3;
  check_names(unknown, "requests.rate");
  Json wrong_arrival = poisson(4, 1, 64, 4);
  wrong_arrival["arrival"] = "bursty";
  check_names(wrong_arrival, "requests.arrival");
}

// A trace file that removes itself.
struct TraceFile {
  fs::path path;
  explicit TraceFile(const std::string& text)
      : path(fs::temp_directory_path() / ("moesim-requests-" + std::to_string(getpid()) + "-" +
                                          std::to_string(counter++) + ".jsonl")) {
    std::ofstream(path) << text;
  }
  ~TraceFile() { std::remove(path.string().c_str()); }
  Json spec() const { return Json{{"trace", path.string()}}; }
  static inline int counter = 0;
};

TEST_CASE("request traces read line by line and skip blank lines", "[workloads][requests]") {
  const TraceFile t(
      "{\"arrival_s\": 0, \"input_tokens\": 10, \"output_tokens\": 1}\n"
      "\n"
      "  \r\n"
      "{\"arrival_s\": 0.5, \"input_tokens\": 20, \"output_tokens\": 2}\n"
      "{\"arrival_s\": 0.5, \"input_tokens\": 30, \"output_tokens\": 3}");  // no final newline
  const RequestLoad load = parse_request_load(t.spec(), "requests");
  CHECK(load.arrival == RequestLoad::Arrival::kTrace);
  REQUIRE(load.requests.size() == 3);
  CHECK(load.requests[1].arrival_s == 0.5);
  CHECK(load.requests[2].input_tokens == 30);
  CHECK(load.requests[2].output_tokens == 3);
}

TEST_CASE("a malformed request trace names the file and the line", "[workloads][requests]") {
  const std::string good = "{\"arrival_s\": 0, \"input_tokens\": 10, \"output_tokens\": 1}\n";
  auto trace_error = [](const TraceFile& t) {
    const std::string e = error_of(t.spec());
    INFO(e);
    CHECK(e.find('\n') == std::string::npos);
    CHECK_THAT(e, Catch::Contains(t.path.filename().string()));
    return e;
  };
  // Line 3 (after a blank line 2) is not JSON.
  CHECK_THAT(trace_error(TraceFile(good + "\n" + "{\"arrival_s\": 1, \"input_tokens\": \n")),
             Catch::Contains("line 3"));
  // A field out of range, a missing field, an unknown field.
  CHECK_THAT(trace_error(TraceFile(
                 good + good + "{\"arrival_s\": 1, \"input_tokens\": 0, \"output_tokens\": 1}")),
             Catch::Contains("line 3") && Catch::Contains("input_tokens"));
  CHECK_THAT(trace_error(TraceFile(good + "{\"arrival_s\": 1, \"input_tokens\": 5}\n")),
             Catch::Contains("line 2") && Catch::Contains("output_tokens"));
  CHECK_THAT(trace_error(TraceFile(
                 good + "{\"arrival_s\": 1, \"input_tokens\": 5, \"output_tokens\": 1, \"x\": 1}")),
             Catch::Contains("line 2") && Catch::Contains("x"));
  // Out of arrival order.
  CHECK_THAT(trace_error(TraceFile(
                 "{\"arrival_s\": 2, \"input_tokens\": 10, \"output_tokens\": 1}\n" + good)),
             Catch::Contains("line 2") && Catch::Contains("arrival"));
  // Nothing in it, or no such file.
  CHECK_THAT(trace_error(TraceFile("\n\n")), Catch::Contains("no request"));
  CHECK_THAT(error_of(Json{{"trace", "/nonexistent/moesim-requests.jsonl"}}),
             Catch::Contains("requests.trace"));
}

}  // namespace
}  // namespace moesim::workloads
