// Fuzz target: a .moetrace file read block by block and summarised, as
// `moesim trace stats` does. Every input must read or throw moesim::Error;
// the reader must never reserve memory the input's size cannot justify
// (libFuzzer's -malloc_limit_mb catches that).

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "sim/core/error.h"
#include "workloads/routing_stats.h"
#include "workloads/trace_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto reader = moesim::workloads::TraceReader::from_memory(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz.moetrace");
    const auto& h = reader.header();
    moesim::workloads::RoutingStats stats(h.experts, h.moe_layers, 1.25);
    moesim::workloads::RoutingBatch batch;
    int step = 0, layer = 0;
    while (reader.next(step, layer, batch)) stats.add(layer, batch);
    (void)stats.to_json();
  } catch (const moesim::Error&) {
  }
  return 0;
}
