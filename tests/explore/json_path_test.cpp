// Dot-separated JSON paths into scenarios (sweep axes) and point hashes.

#include "sim/explore/json_path.h"

#include <catch2/catch.hpp>

#include "sim/core/error.h"

namespace moesim::explore {
namespace {

TEST_CASE("set_json_path creates objects, and turns a preset name into an object", "[explore]") {
  Json doc = Json::parse(R"({"cluster": "dgx-h100", "gating": {}})");
  set_json_path(doc, "gating.capacity_factor", 1.25, "test");
  set_json_path(doc, "options.routing.seed", 7, "test");
  set_json_path(doc, "cluster.nodes", 4, "test");
  CHECK(doc["gating"]["capacity_factor"] == 1.25);
  CHECK(doc["options"]["routing"]["seed"] == 7);
  CHECK(doc["cluster"] == Json::parse(R"({"preset": "dgx-h100", "nodes": 4})"));
  CHECK(get_json_path(doc, "cluster.nodes") == 4);
  CHECK(get_json_path(doc, "cluster.missing").is_null());
  CHECK(get_json_path(doc, "gating.capacity_factor.deeper").is_null());
}

TEST_CASE("set_json_path errors name the path and where it came from", "[explore]") {
  Json doc = Json::parse(R"({"workload": {"seq_len": 4096}})");
  CHECK_THROWS_WITH(
      set_json_path(doc, "workload.seq_len.x", 1, "sweep.json: point 3"),
      Catch::Contains("sweep.json: point 3") && Catch::Contains("crosses a non-object"));
  CHECK_THROWS_WITH(set_json_path(doc, "workload..seq_len", 1, "here"),
                    Catch::Contains("empty component"));
}

TEST_CASE("scenario_hash ignores key order and sees every value", "[explore]") {
  const Json a = Json::parse(R"({"x": 1, "y": {"a": true, "b": [1, 2]}})");
  const Json b = Json::parse(R"({"y": {"b": [1, 2], "a": true}, "x": 1})");
  const Json c = Json::parse(R"({"y": {"b": [2, 1], "a": true}, "x": 1})");
  CHECK(scenario_hash(a) == scenario_hash(b));
  CHECK(scenario_hash(a) != scenario_hash(c));
  CHECK(scenario_hash(a).size() == 16);
}

}  // namespace
}  // namespace moesim::explore
