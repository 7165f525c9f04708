// Fuzz target: serving request loads. The input is read both as a request
// trace's text (JSONL, workloads::parse_request_trace, as `"requests":
// {"trace": FILE}` reads its file) and, when it is a JSON object without a
// trace, as a request-load spec (workloads::parse_request_load: Poisson,
// closed loop, length distributions). Every input must parse or throw
// moesim::Error; a crash, a sanitizer report, another exception or a huge
// allocation is a bug.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sim/core/config.h"
#include "sim/core/error.h"
#include "workloads/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    moesim::workloads::parse_request_trace(text, "fuzz.jsonl");
  } catch (const moesim::Error&) {
  }
  try {
    const moesim::Json spec = moesim::parse_json(text, "fuzz");
    if (spec.is_object() && !spec.contains("trace")) {
      moesim::workloads::parse_request_load(spec, "requests");
    }
  } catch (const moesim::Error&) {
  }
  return 0;
}
