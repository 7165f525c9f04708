#include <catch2/catch.hpp>

#include "sim/core/config.h"
#include "sim/core/error.h"

using moesim::ConfigObject;
using moesim::Error;
using moesim::Json;
using moesim::parse_json;

TEST_CASE("config errors name the JSON path, the expectation and the value", "[config]") {
  const Json doc = parse_json(R"({"cluster": {"nodes": -1, "name": "x", "bw": "fast"}})", "t");
  ConfigObject root(doc, "");
  ConfigObject cluster = root.object("cluster");
  CHECK_THROWS_WITH(cluster.integer("nodes", 1, INT64_MAX),
                    "cluster.nodes: expected a positive integer, got -1");
  CHECK_THROWS_WITH(cluster.number("bw", 0, 1e12),
                    "cluster.bw: expected a number in [0, 1000000000000], got \"fast\"");
  CHECK_THROWS_WITH(cluster.integer("gpus", 1, 8), "cluster.gpus: required field is missing");
  CHECK(cluster.integer_or("gpus", 8, 1, 8) == 8);
  CHECK_THROWS_WITH(cluster.choice("name", {"a", "b"}),
                    "cluster.name: expected one of a|b, got \"x\"");
}

TEST_CASE("unknown fields are rejected by finish()", "[config]") {
  const Json doc = parse_json(R"({"a": 1, "typo": 2})", "t");
  ConfigObject root(doc, "");
  CHECK(root.integer("a", 0, 10) == 1);
  CHECK_THROWS_WITH(root.finish(), "typo: unknown field");
  const Json ok = parse_json(R"({"a": 1})", "t");
  ConfigObject fine(ok, "");
  fine.integer("a", 0, 10);
  CHECK_NOTHROW(fine.finish());
}

TEST_CASE("integers accept integral floats, reject fractions and huge values", "[config]") {
  const Json doc = parse_json(R"({"a": 1e6, "b": 2.5, "c": 18446744073709551615, "d": true})", "t");
  ConfigObject root(doc, "p");
  CHECK(root.integer("a", 0, INT64_MAX) == 1'000'000);
  CHECK_THROWS_WITH(root.integer("b", 0, 10), "p.b: expected an integer in [0, 10], got 2.5");
  CHECK_THROWS_AS(root.integer("c", 0, INT64_MAX), Error);
  CHECK_THROWS_WITH(root.integer("d", 0, 10), Catch::Contains("got true"));
}

TEST_CASE("malformed JSON reports the byte offset", "[config]") {
  CHECK_THROWS_WITH(parse_json(R"({"a": 1,)", "scenario.json"),
                    Catch::StartsWith("scenario.json: byte 8: invalid JSON"));
  CHECK_THROWS_WITH(parse_json("[1, 2", "x"), Catch::StartsWith("x: byte 5:"));
  CHECK_THROWS_WITH(parse_json("[1, x]", "x"), Catch::StartsWith("x: byte 4:"));
  CHECK_THROWS_WITH(moesim::load_json_file("/nonexistent/file.json"),
                    Catch::StartsWith("/nonexistent/file.json: cannot open"));
}

TEST_CASE("a non-object where an object is needed is reported", "[config]") {
  const Json doc = parse_json(R"({"model": 3})", "t");
  ConfigObject root(doc, "");
  CHECK_THROWS_WITH(root.object("model"), "model: expected a JSON object, got 3");
}

// Issue 15: bad JSON never crashes, is never read differently from its text,
// and every error names a byte offset or a JSON path.
TEST_CASE("JSON nesting is capped before any tree is built", "[config][robust]") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK_THROWS_WITH(parse_json(deep, "deep.json"),
                    "deep.json: byte 512: invalid JSON: nested deeper than 512 levels (the limit)");
  const std::string at_limit =
      std::string(moesim::kMaxJsonDepth, '[') + std::string(moesim::kMaxJsonDepth, ']');
  CHECK_NOTHROW(parse_json(at_limit, "ok"));
  // Brackets inside strings are text, not nesting.
  CHECK_NOTHROW(parse_json("{\"a\": \"" + std::string(1000, '[') + "\\\"\"}", "s"));
}

TEST_CASE("number overflow is a user error with its byte offset", "[config][robust]") {
  CHECK_THROWS_WITH(parse_json(R"({"a": 1e99999})", "big.json"),
                    "big.json: byte 6: invalid JSON: number overflow parsing '1e99999'");
  CHECK_THROWS_WITH(parse_json("[1, -1e400]", "x"), Catch::StartsWith("x: byte 4: invalid JSON"));
}

TEST_CASE("duplicate keys are rejected with their JSON path", "[config][robust]") {
  CHECK_THROWS_WITH(parse_json(R"({"model": 1, "model": 2})", "s.json"),
                    "s.json: model: duplicate key");
  CHECK_THROWS_WITH(parse_json(R"({"a": [{"x": 1}, {"y": 2, "b": {"c": 1, "c": 1}}]})", "s.json"),
                    "s.json: a[1].b.c: duplicate key");
  // The same key in sibling objects is fine.
  CHECK_NOTHROW(parse_json(R"([{"a": 1}, {"a": 2}, {"b": {"a": 3}}])", "ok"));
}
