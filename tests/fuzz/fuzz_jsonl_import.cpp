// Fuzz target: a JSONL routing dump through `moesim trace import`'s parser
// (workloads::JsonlTraceImport), both passes: validation and planning, then
// every block re-read in trace order. Every input must import or throw
// moesim::Error.

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "sim/core/error.h"
#include "workloads/trace_import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    moesim::workloads::JsonlTraceImport import(in, "fuzz.jsonl", {});
    (void)import.trace_bytes();
    moesim::workloads::RoutingBatch batch;
    for (int64_t i = 0; i < import.header().blocks(); ++i) import.read_block(i, batch);
  } catch (const moesim::Error&) {
  }
  return 0;
}
