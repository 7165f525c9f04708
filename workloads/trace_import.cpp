#include "workloads/trace_import.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/core/file_io.h"

namespace moesim::workloads {
namespace {

// Reads one line without its '\n' into `line`, refusing lines longer than
// kMaxImportLineBytes before storing them. False at the end of the input.
bool read_line(std::istream& in, std::string& line, const std::string& source, int64_t number) {
  line.clear();
  std::streambuf* buf = in.rdbuf();
  bool any = false;
  for (;;) {
    const int c = buf->sbumpc();
    if (c == std::char_traits<char>::eof()) return any;
    any = true;
    if (c == '\n') return true;
    if (line.size() == kMaxImportLineBytes) {
      throw Error(fmt::format("{}: line {}: longer than {} bytes (the import limit)", source,
                              number, kMaxImportLineBytes));
    }
    line.push_back(static_cast<char>(c));
  }
}

bool blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

// Rows of `array_path` in `doc`: an array of `tokens` arrays of `k` values
// each, or an Error naming the first row that is not.
void expect_rows(const Json& rows, const std::string& path, int64_t tokens, int k,
                 const char* what) {
  if (!rows.is_array() || static_cast<int64_t>(rows.size()) != tokens) {
    throw_config_error(path, fmt::format("expected one row per token ({} rows)", tokens));
  }
  for (int64_t t = 0; t < tokens; ++t) {
    const Json& row = rows[static_cast<size_t>(t)];
    if (!row.is_array() || static_cast<int>(row.size()) != k) {
      throw_config_error(join_path(path, static_cast<size_t>(t)),
                         fmt::format("expected {} {}, got {}", k, what, describe_json(row)));
    }
  }
}

// The value as an integer in [min, max], or the error expect_integer gives,
// with the path built only then (a dump holds millions of values).
template <class PathFn>
int64_t integer_in(const Json& v, int64_t min, int64_t max, const PathFn& path) {
  if (v.is_number_integer()) {
    const auto x = v.get<int64_t>();
    if (x >= min && x <= max && !(v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(max))) {
      return x;
    }
  }
  return expect_integer(v, path(), min, max);
}

// A gate weight: a number in [0, 1].
template <class PathFn>
float weight_in(const Json& v, const PathFn& path) {
  if (v.is_number_float()) {
    const double x = v.get<double>();
    if (x >= 0 && x <= 1) return static_cast<float>(x);
  }
  return static_cast<float>(expect_number(v, path(), 0, 1));
}

std::string element_path(const char* field, size_t row, size_t column) {
  return join_path(join_path(field, row), column);
}

}  // namespace

JsonlTraceImport::JsonlTraceImport(std::istream& in, std::string source,
                                   const TraceImportOptions& options)
    : in_(in), source_(std::move(source)), model_(options.model) {
  if (model_ && options.experts != 0) {
    throw Error("trace import: give a model or an expert count, not both");
  }
  if (options.experts < 0 || options.experts > kMaxTraceExperts) {
    throw Error(fmt::format("trace import: expert count {} is not in [1, {}]", options.experts,
                            kMaxTraceExperts));
  }
  known_experts_ = model_ ? model_->routed_experts : options.experts;
  if (model_ && (known_experts_ < 1 || known_experts_ > kMaxTraceExperts)) {
    throw Error(fmt::format("trace import: model {} has {} routed experts (a trace holds 1 to {})",
                            model_->name, known_experts_, kMaxTraceExperts));
  }
  top_k_ = model_ ? model_->top_k : 0;
  RoutingBatch batch;
  Line line;
  uint64_t offset = 0;
  while (read_line(in_, line_, source_, line.number + 1)) {
    ++line.number;
    line.offset = offset;
    offset += line_.size() + 1;
    if (blank(line_)) continue;
    parse_line(line_, line, batch, line.step, line.layer);
    line.tokens = batch.tokens;
    if (static_cast<int64_t>(blocks_.size()) >= kMaxTraceBlocks) {
      throw Error(fmt::format("{}: line {}: more than {} routing lines (the trace limit)", source_,
                              line.number, kMaxTraceBlocks));
    }
    blocks_.push_back(line);
  }
  if (blocks_.empty()) throw Error(fmt::format("{}: no routing lines", source_));
  plan();
}

void JsonlTraceImport::parse_line(const std::string& text, const Line& where, RoutingBatch& b,
                                  int& step, int& layer) {
  const std::string at = fmt::format("{}: line {} (byte {})", source_, where.number, where.offset);
  try {
    const Json doc = parse_json(text, "JSON");
    ConfigObject o(doc, "");
    step = static_cast<int>(o.integer("step", 0, kMaxTraceSteps - 1));
    const int layer_limit = model_ ? model_->moe_layer_count() : kMaxTraceMoeLayers;
    layer = static_cast<int>(o.integer("layer", 0, layer_limit - 1));
    const Json& experts = o.value("experts");
    if (!experts.is_array() || experts.empty() || !experts[0].is_array()) {
      throw_config_error("experts", "expected a non-empty array of arrays of expert ids");
    }
    if (top_k_ == 0) {
      top_k_ = static_cast<int>(experts[0].size());
      if (top_k_ < 1 || top_k_ > kMaxTraceTopK) {
        throw_config_error(
            "experts[0]",
            fmt::format("expected 1 to {} expert ids per token, got {}", kMaxTraceTopK, top_k_));
      }
    }
    const int k = top_k_;
    const int64_t tokens = static_cast<int64_t>(experts.size());
    if (tokens > kMaxTraceBlockRoutings / k) {
      throw_config_error("experts", fmt::format("{} tokens x top-{} exceeds the limit of {} "
                                                "routings per (step, layer)",
                                                tokens, k, kMaxTraceBlockRoutings));
    }
    const std::string ids_phrase =
        model_ ? fmt::format("expert ids (model {} routes top-{})", model_->name, k)
               : std::string("expert ids (every token has the same top-k)");
    expect_rows(experts, "experts", tokens, k, ids_phrase.c_str());
    const bool has_weights = o.has("weights"), has_ranks = o.has("source_rank");
    const Json* weights = has_weights ? &o.value("weights") : nullptr;
    if (weights) expect_rows(*weights, "weights", tokens, k, "gate weights");
    const Json* ranks = has_ranks ? &o.value("source_rank") : nullptr;
    if (ranks && (!ranks->is_array() || static_cast<int64_t>(ranks->size()) != tokens)) {
      throw_config_error("source_rank", fmt::format("expected one entry per token ({})", tokens));
    }
    o.finish();
    const int max_id = known_experts_ > 0 ? known_experts_ - 1 : kMaxTraceExperts - 1;
    b.resize(tokens, k, 0);
    for (int64_t t = 0; t < tokens; ++t) {
      const auto row = static_cast<size_t>(t);
      for (int c = 0; c < k; ++c) {
        const auto copy = static_cast<size_t>(c);
        const auto e = static_cast<int32_t>(integer_in(
            experts[row][copy], 0, max_id, [&] { return element_path("experts", row, copy); }));
        const int32_t* first = &b.expert[t * k];
        if (std::find(first, first + c, e) != first + c) {
          throw_config_error(element_path("experts", row, copy),
                             fmt::format("the token is routed twice to expert {}", e));
        }
        b.expert[t * k + c] = e;
        max_expert_ = std::max(max_expert_, static_cast<int>(e));
        b.weight[t * k + c] = weights
                                  ? weight_in((*weights)[row][copy],
                                              [&] { return element_path("weights", row, copy); })
                                  : 1.0f / static_cast<float>(k);
      }
      b.source_rank[t] =
          ranks ? static_cast<int32_t>(integer_in((*ranks)[row], 0, kMaxTraceRanks - 1,
                                                  [&] { return join_path("source_rank", row); }))
                : 0;
      max_rank_ = std::max(max_rank_, static_cast<int>(b.source_rank[t]));
    }
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", at, e.what()));
  }
}

void JsonlTraceImport::plan() {
  // Trace order: step-major. Equal neighbours are a (step, layer) given twice.
  std::stable_sort(blocks_.begin(), blocks_.end(), [](const Line& a, const Line& b) {
    return a.step != b.step ? a.step < b.step : a.layer < b.layer;
  });
  for (size_t i = 1; i < blocks_.size(); ++i) {
    const Line &a = blocks_[i - 1], &b = blocks_[i];
    if (a.step == b.step && a.layer == b.layer) {
      throw Error(fmt::format("{}: line {}: step {} layer {} is already given on line {}", source_,
                              b.number, b.step, b.layer, a.number));
    }
  }
  int steps = 0, layers = 0;
  for (const Line& l : blocks_) {
    steps = std::max(steps, l.step + 1);
    layers = std::max(layers, l.layer + 1);
  }
  // Sorted and distinct: block i must be (i / layers, i % layers).
  for (size_t i = 0; i < blocks_.size() + 1; ++i) {
    const int want_step = static_cast<int>(i / layers), want_layer = static_cast<int>(i % layers);
    if (want_step >= steps) break;
    if (i == blocks_.size() || blocks_[i].step != want_step || blocks_[i].layer != want_layer) {
      throw Error(
          fmt::format("{}: no line for step {} layer {} (the dump has steps 0 to {} and "
                      "layers 0 to {}; each pair needs one line)",
                      source_, want_step, want_layer, steps - 1, layers - 1));
    }
  }
  header_.generator = "import";
  header_.top_k = top_k_;
  header_.moe_layers = layers;
  header_.steps = steps;
  header_.ranks = max_rank_ + 1;
  header_.model = model_ ? model_->name : "imported";
  header_.experts = known_experts_ > 0 ? known_experts_ : max_expert_ + 1;
  try {
    header_.validate();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", source_, e.what()));
  }
}

uint64_t JsonlTraceImport::trace_bytes() const {
  uint64_t bytes = 8 + 4 + 4 + header_.to_json().dump().size() + 4;
  for (const Line& l : blocks_) bytes += header_.block_bytes(l.tokens);
  return bytes;
}

void JsonlTraceImport::read_block(int64_t index, RoutingBatch& batch) {
  const Line& where = blocks_.at(static_cast<size_t>(index));
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(where.offset));
  if (!in_ || !read_line(in_, line_, source_, where.number)) {
    throw Error(fmt::format("{}: line {}: cannot read it again (did the file change?)", source_,
                            where.number));
  }
  int step = 0, layer = 0;
  parse_line(line_, where, batch, step, layer);
  if (step != where.step || layer != where.layer || batch.tokens != where.tokens) {
    throw Error(fmt::format("{}: line {} changed while importing", source_, where.number));
  }
  batch.experts = header_.experts;
}

void JsonlTraceImport::write(const std::string& path) {
  TraceWriter writer(path, header_);
  RoutingBatch batch;
  for (int64_t i = 0; i < header_.blocks(); ++i) {
    read_block(i, batch);
    writer.write(blocks_[static_cast<size_t>(i)].step, blocks_[static_cast<size_t>(i)].layer,
                 batch);
  }
  writer.finish();
}

TraceHeader import_jsonl_trace(const std::string& input_path, const std::string& output_path,
                               const TraceImportOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(input_path, ec)) {
    throw Error(fmt::format("{}: {}", input_path,
                            std::filesystem::exists(input_path, ec)
                                ? "not a regular file (the import reads it twice)"
                                : "cannot open: No such file or directory"));
  }
  std::ifstream in(input_path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open", input_path));
  JsonlTraceImport import(in, input_path, options);
  check_room_for(output_path, import.trace_bytes());
  import.write(output_path);
  return import.header();
}

}  // namespace moesim::workloads
