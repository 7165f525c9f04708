#pragma once
// The execution model as the exploration drivers (sweep, search) see it: a
// scenario JSON in, a report JSON out. Both functions are thread-safe and
// deterministic (same scenario -> byte-identical report).

#include <string>

#include "hwmodels/cluster.h"
#include "reports/json_output.h"
#include "sim/core/config.h"
#include "sim/exec/step_inputs.h"

namespace moesim::cli {

// Simulates one scenario and returns its report: exactly what
// `moesim run scenario.json -o report.json` writes. Invalid scenarios throw
// moesim::Error with a one-line message naming the field.
OrderedJson run_scenario_report(const Json& scenario);

// The same, optionally also rendering the last step's timeline (Chrome trace
// JSON, at most `timeline_max_gpus` GPUs) into *timeline.
OrderedJson run_scenario(const Json& scenario, std::string* timeline, int timeline_max_gpus);

// One of examples/*.json, compiled into the binary.
Json embedded_example(const std::string& file_name);

// Validates a scenario and estimates its peak memory per GPU without
// simulating it (cheap: used to prune strategy searches).
struct ScenarioCheck {
  bool valid = false;
  std::string reason_code;       // empty when valid, else e.g. "tp_divides_heads", "out_of_memory"
  std::string reason;            // one line a user can act on
  double peak_memory_bytes = 0;  // largest over GPUs (valid scenarios only)
  double memory_capacity_bytes = 0;  // HBM per GPU
};
ScenarioCheck check_scenario(const Json& scenario);

}  // namespace moesim::cli
