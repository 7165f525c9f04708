// Fuzz target: a scenario document through parsing and validation, as
// `moesim run` resolves it (scenario::resolve_scenario), then the routing
// generator spec it names. Every input must resolve or throw moesim::Error;
// a crash, a sanitizer report, another exception or a huge allocation is a bug.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sim/core/config.h"
#include "sim/core/error.h"
#include "sim/scenario/scenario.h"
#include "workloads/routing_generator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const moesim::scenario::Scenario s =
        moesim::scenario::resolve_scenario(moesim::parse_json(text, "fuzz"));
    moesim::workloads::make_generator(s.routing.generator, s.model, s.routing.seed,
                                      "routing.generator");
  } catch (const moesim::Error&) {
  }
  return 0;
}
