// Fuzz target: a scenario document through parsing and validation, as
// `moesim run` resolves it: a training scenario by scenario::resolve_scenario
// and the routing generator spec it names, a serving one
// (workload.mode "inference") by scenario::resolve_inference_scenario, which
// also draws its requests. Every input must resolve or throw moesim::Error;
// a crash, a sanitizer report, another exception or a huge allocation is a bug.
// A serving request trace names a file: those documents are left to the
// `requests` target, which parses trace text directly.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sim/core/config.h"
#include "sim/core/error.h"
#include "sim/scenario/inference.h"
#include "sim/scenario/scenario.h"
#include "workloads/routing_generator.h"

namespace {

bool names_request_trace(const moesim::Json& doc) {
  const auto requests = doc.find("requests");
  return requests != doc.end() && requests->is_object() && requests->contains("trace");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const moesim::Json doc = moesim::parse_json(text, "fuzz");
    if (moesim::scenario::is_inference(doc)) {
      if (!names_request_trace(doc)) moesim::scenario::resolve_inference_scenario(doc);
      return 0;
    }
    const moesim::scenario::Scenario s = moesim::scenario::resolve_scenario(doc);
    moesim::workloads::make_generator(s.routing.generator, s.model, s.routing.seed,
                                      "routing.generator");
  } catch (const moesim::Error&) {
  }
  return 0;
}
