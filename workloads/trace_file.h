#pragma once
// Routing trace files (.moetrace): a small JSON header and a stream of
// binary blocks, one per (step, MoE layer), so a trace of 10^8 routings is
// written and read block by block without holding it in memory.
//
// Layout, version 2 (little-endian):
//   "MOETRACE" | u32 version (2) | u32 header_bytes | header JSON | u32 header_fnv1a
//   then exactly steps x moe_layers blocks, step-major (step 0 layer 0, step 0
//   layer 1, ...), each once:
//     u32 "BLK1" | u32 step | u32 layer | u64 tokens | u32 block_fnv1a |
//     payload: tokens x u16 source rank, tokens*k x u16 expert,
//              tokens*k x f32 gate weight (exact round trip)
//   block_fnv1a covers the block's first 20 bytes (magic, step, layer, tokens)
//   and then its payload; header_fnv1a covers the header JSON text.
// The header names the model, experts, top_k, moe_layers, steps, blocks
// (= steps x moe_layers), ranks, the generator and seed.
//
// Version 1 (moesim before the format change) is still read: no header
// checksum, no "blocks" field, block_fnv1a over the payload only. Its blocks
// must also come in order, each once; version 1 traces imported out of order
// are rejected with that reason (re-import the JSONL to convert them).
//
// Reading rejects, with the byte offset of the offending field: a truncated
// file (also one cut at a block boundary), bytes after the last block, a block
// out of order or repeated, any count the rest of the file cannot hold (checked
// before memory is reserved), a checksum mismatch, an expert id >= experts, a
// source rank >= ranks, a token routed twice to one expert, a gate weight that
// is not a number in [0, 1]. Header fields are checked against the limits below.

#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "sim/core/file_io.h"
#include "workloads/routing.h"

namespace moesim::workloads {

// Limits of what moesim writes and reads (README "Limits"). Expert ids and
// ranks are u16 in the format; the others bound the memory one reader needs:
// a block of kMaxTraceBlockRoutings token copies takes at most
// 2^24 x (6 bytes on disk + 8 in memory) + tokens x (2 + 4) bytes ~ 335 MB.
inline constexpr int kMaxTraceExperts = 65535;
inline constexpr int kMaxTraceRanks = 65535;
inline constexpr int kMaxTraceTopK = 64;
inline constexpr int kMaxTraceMoeLayers = 10000;
inline constexpr int kMaxTraceSteps = 1'000'000;
inline constexpr int64_t kMaxTraceBlocks = int64_t{1} << 24;
inline constexpr int64_t kMaxTraceBlockRoutings = int64_t{1} << 24;  // tokens x top_k
// Per-layer expert loads (trace stats, replay) take 8 bytes per expert and
// layer: at most 32 MB, whatever the header says.
inline constexpr int64_t kMaxTraceExpertLayers = int64_t{1} << 22;  // experts x moe_layers
inline constexpr uint32_t kTraceFormatVersion = 2;
// Bytes of one block's header (magic, step, layer, tokens, checksum).
inline constexpr uint64_t kTraceBlockHeaderBytes = 4 + 4 + 4 + 8 + 4;

struct TraceHeader {
  std::string model;
  int experts = 0;
  int top_k = 0;
  int moe_layers = 0;
  int steps = 0;
  int ranks = 1;
  std::string generator;  // spec, or "import"
  uint64_t seed = 0;

  int64_t blocks() const { return static_cast<int64_t>(steps) * moe_layers; }
  // Bytes of a block of `tokens` tokens, header included.
  uint64_t block_bytes(int64_t tokens) const;
  // Throws moesim::Error "trace header: <field> ..." when a field is outside
  // the limits above (or top_k > experts, blocks > kMaxTraceBlocks,
  // experts x moe_layers > kMaxTraceExpertLayers).
  void validate() const;
  Json to_json() const;
};

// Writes a trace: the header, then one write() per block in the order the
// format requires. Goes through OutputFile, so a regular file appears only
// complete, on finish(), and a device or FIFO is written straight through.
class TraceWriter {
 public:
  // Throws moesim::Error for an invalid header (TraceHeader::validate) or an
  // output that cannot be written.
  TraceWriter(const std::string& path, const TraceHeader& header);
  // REQUIRES: (step, layer) is the next block in order, 1 <= batch.tokens,
  // batch.tokens x top_k <= kMaxTraceBlockRoutings, batch.top_k == header top_k,
  // every expert id < experts and source rank < ranks (otherwise Error).
  void write(int step, int layer, const RoutingBatch& batch);
  // Throws unless all header.blocks() blocks were written.
  void finish();
  uint64_t bytes_written() const { return bytes_; }

 private:
  TraceHeader header_;  // before out_: validated before the output is opened
  OutputFile out_;
  std::string buffer_;
  std::vector<int64_t> seen_;  // scratch for the content check
  int64_t blocks_written_ = 0;
  uint64_t bytes_ = 0;
};

class TraceReader {
 public:
  // Reads a trace file. It must be a regular file: its size bounds every
  // count in it before anything is allocated.
  explicit TraceReader(const std::string& path);
  // Reads a trace held in memory; `name` is used in messages (tests, fuzzing).
  static TraceReader from_memory(std::string bytes, const std::string& name);

  const TraceHeader& header() const { return header_; }
  uint32_t version() const { return version_; }
  // Reads the next block into (step, layer, batch); false after the header's
  // last block, once the file is checked to end there.
  bool next(int& step, int& layer, RoutingBatch& batch);
  uint64_t offset() const { return offset_; }

 private:
  TraceReader(std::unique_ptr<std::istream> in, uint64_t size_bytes, std::string name);
  void read_header();
  void check_block_header(uint64_t at, uint32_t step, uint32_t layer, uint64_t tokens);
  void decode_payload(uint64_t at, int64_t tokens, RoutingBatch& batch);
  [[noreturn]] void fail(uint64_t at, const std::string& what) const;
  void read_exact(char* dst, size_t n, const char* what);
  std::string path_;
  std::unique_ptr<std::istream> in_;
  uint64_t size_bytes_ = 0;
  uint32_t version_ = 0;
  TraceHeader header_;
  uint64_t offset_ = 0;
  int64_t next_block_ = 0;
  std::string payload_;
  std::vector<int64_t> seen_;  // scratch for the content check
};

// FNV-1a, 32 bits; `state` continues a previous call's result.
inline constexpr uint32_t kFnv1a32Offset = 2166136261u;
uint32_t fnv1a32(const void* data, size_t n, uint32_t state = kFnv1a32Offset);

}  // namespace moesim::workloads
