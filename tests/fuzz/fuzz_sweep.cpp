// Fuzz target: a sweep file through parsing and expansion, as `moesim sweep`
// loads it (the same JSON checks as every input, then explore::expand_sweep:
// axes, mode, explicit points, each point's scenario, at most 1,000 points).
// A base given as a path is not followed (it would read whatever file the
// input names): those inputs stop after the JSON checks. Every input must expand or throw
// moesim::Error; a crash, a sanitizer report, another exception or a huge
// allocation is a bug.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "reports/json_output.h"
#include "sim/core/config.h"
#include "sim/core/error.h"
#include "sim/explore/sweep.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    moesim::check_json_text(text, "fuzz");
    const moesim::OrderedJson sweep = moesim::OrderedJson::parse(text);
    if (sweep.is_object() && sweep.contains("base") && sweep["base"].is_string()) return 0;
    moesim::explore::expand_sweep(sweep, "fuzz", "/nonexistent-moesim-fuzz", 1000);
  } catch (const moesim::Error&) {
  }
  return 0;
}
