#pragma once
// Importing routing dumps into .moetrace files.
//
// The dump is JSONL, one line per (step, MoE layer) batch, as written by the
// PyTorch hook in the README:
//   {"step": 0, "layer": 3, "experts": [[5, 1], ...], "weights": [[0.7, 0.3], ...],
//    "source_rank": [0, ...]}
// "weights" (default 1/top_k each) and "source_rank" (default 0) are optional.
// Every token lists the same number of distinct experts (the top-k); every
// (step, layer) pair in [0, steps) x [0, layers) appears on exactly one line,
// lines in any order; blank lines are skipped.
//
// The import reads the dump twice and never holds more than one line's batch:
// the first pass validates every line and plans the trace (header, order,
// size); the second re-reads the lines in trace order while writing. Errors
// are moesim::Error naming the line, its byte offset and the field:
//   dump.jsonl: line 3 (byte 210): weights[1]: expected 2 gate weights

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "workloads/model_config.h"
#include "workloads/routing.h"
#include "workloads/trace_file.h"

namespace moesim::workloads {

// Longest line the import reads (a 65,536-token batch at top-8 with
// json.dumps float weights is ~13 MB). Parsing a line this long needs about
// 16 bytes of memory per character (README "Limits").
inline constexpr size_t kMaxImportLineBytes = size_t{64} << 20;

struct TraceImportOptions {
  // The model the dump comes from: names the trace and sets the expert count;
  // its top_k and MoE layer count bound the dump's. Null: "imported".
  const MoeModelConfig* model = nullptr;
  // Expert count when no model is given; 0 takes the largest expert id + 1.
  // REQUIRES: 0 when `model` is set.
  int experts = 0;
};

class JsonlTraceImport {
 public:
  // First pass over `in` (which must stay alive and seekable): validates
  // every line and plans the trace. `source` names the input in messages.
  JsonlTraceImport(std::istream& in, std::string source, const TraceImportOptions& options);

  const TraceHeader& header() const { return header_; }
  int64_t lines() const { return static_cast<int64_t>(blocks_.size()); }
  // Size of the trace write() produces, in bytes.
  uint64_t trace_bytes() const;
  // The batch of trace block `index` (step-major order), re-read from the input.
  // REQUIRES: 0 <= index < header().blocks().
  void read_block(int64_t index, RoutingBatch& batch);
  // Writes the trace to `path` (see TraceWriter), block by block.
  void write(const std::string& path);

 private:
  struct Line {
    int step = 0, layer = 0;
    uint64_t offset = 0;
    int64_t number = 0;  // 1-based line number
    int64_t tokens = 0;
  };
  // Parses and validates one line into `batch`; sets step and layer.
  void parse_line(const std::string& text, const Line& where, RoutingBatch& batch, int& step,
                  int& layer);
  void plan();

  std::istream& in_;
  std::string source_;
  const MoeModelConfig* model_ = nullptr;
  int known_experts_ = 0;  // 0 while the expert count is inferred
  int top_k_ = 0;          // set by the first line
  int max_expert_ = -1, max_rank_ = 0;
  std::vector<Line> blocks_;  // after plan(): in trace order
  TraceHeader header_;
  std::string line_;  // scratch
};

// Imports the JSONL file `input_path` (a regular file: it is read twice) into
// the trace `output_path`; returns the trace's header. Refuses an output the
// file system cannot hold.
TraceHeader import_jsonl_trace(const std::string& input_path, const std::string& output_path,
                               const TraceImportOptions& options);

}  // namespace moesim::workloads
