#pragma once
// Routing trace files (.moetrace): a small JSON header and a stream of
// binary blocks, one per (step, MoE layer), so a trace of 10^8 routings is
// written and read block by block without holding it in memory.
//
// Layout (little-endian):
//   "MOETRACE" | u32 version (1) | u32 header_bytes | header JSON
//   blocks: u32 "BLK1" | u32 step | u32 layer | u64 tokens | u32 payload_fnv1a |
//           payload: tokens x u16 source rank, tokens*k x u16 expert,
//                    tokens*k x f32 gate weight (exact round trip)
// The header names the model, experts, top_k, moe_layers, steps, ranks, the
// generator and seed. Truncated, corrupt (checksum) or inconsistent files
// (expert id >= experts, unknown layer) are rejected with the byte offset.

#include <cstdint>
#include <fstream>
#include <string>

#include "sim/core/config.h"
#include "workloads/routing.h"

namespace moesim::workloads {

struct TraceHeader {
  std::string model;
  int experts = 0;
  int top_k = 0;
  int moe_layers = 0;
  int steps = 0;
  int ranks = 1;
  std::string generator;  // spec, or "import"
  uint64_t seed = 0;
  Json to_json() const;
};

class TraceWriter {
 public:
  // Writes to `path` + ".tmp" and renames on finish(): an interrupted run
  // never leaves a half-written trace under the final name.
  TraceWriter(const std::string& path, const TraceHeader& header);
  ~TraceWriter();
  void write(int step, int layer, const RoutingBatch& batch);
  void finish();
  uint64_t bytes_written() const { return bytes_; }

 private:
  std::string path_, tmp_;
  TraceHeader header_;
  std::ofstream out_;
  std::string buffer_;
  uint64_t bytes_ = 0;
  bool finished_ = false;
};

class TraceReader {
 public:
  explicit TraceReader(const std::string& path);
  const TraceHeader& header() const { return header_; }
  // Reads the next block; false at the clean end of the file.
  bool next(int& step, int& layer, RoutingBatch& batch);
  uint64_t offset() const { return offset_; }

 private:
  [[noreturn]] void fail(uint64_t at, const std::string& what) const;
  void read_exact(char* dst, size_t n, const char* what);
  std::string path_;
  std::ifstream in_;
  TraceHeader header_;
  uint64_t offset_ = 0;
  std::string payload_;
};

uint32_t fnv1a32(const void* data, size_t n);

}  // namespace moesim::workloads
