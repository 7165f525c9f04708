#include "workloads/trace_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "sim/core/error.h"

namespace moesim::workloads {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'T', 'R', 'A', 'C', 'E'};
constexpr uint32_t kBlockMagic = 0x314B4C42;  // "BLK1"
constexpr uint64_t kFileHeaderBytes = 8 + 4 + 4;
// The JSON header is ~250 bytes; anything near this is not a trace.
constexpr uint32_t kMaxHeaderJsonBytes = 1 << 20;

template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}
template <class T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// What is wrong with a block's content, if anything, and where: `index` is
// the token (source ranks) or the token copy (experts, weights).
struct ContentProblem {
  enum class Field { kNone, kSourceRank, kExpert, kWeight } field = Field::kNone;
  int64_t index = 0;
  std::string what;
};

// `seen` holds, per expert, the last token routed to it (scratch, reused).
ContentProblem check_content(const RoutingBatch& b, const TraceHeader& h,
                             std::vector<int64_t>& seen) {
  using Field = ContentProblem::Field;
  seen.assign(static_cast<size_t>(h.experts), -1);
  for (int64_t t = 0; t < b.tokens; ++t) {
    if (b.source_rank[t] < 0 || b.source_rank[t] >= h.ranks) {
      return {Field::kSourceRank, t,
              fmt::format("source rank {} >= the header's {} ranks", b.source_rank[t], h.ranks)};
    }
    for (int c = 0; c < h.top_k; ++c) {
      const int64_t i = t * h.top_k + c;
      const int32_t e = b.expert[i];
      if (e < 0 || e >= h.experts) {
        return {Field::kExpert, i,
                fmt::format("expert id {} >= the model's {} experts", e, h.experts)};
      }
      if (seen[e] == t) {
        return {Field::kExpert, i, fmt::format("token {} is routed twice to expert {}", t, e)};
      }
      seen[e] = t;
      const float w = b.weight[i];
      if (!(w >= 0.0f && w <= 1.0f)) {
        return {Field::kWeight, i, fmt::format("gate weight {} is not in [0, 1]", w)};
      }
    }
  }
  return {};
}

}  // namespace

uint32_t fnv1a32(const void* data, size_t n, uint32_t state) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) state = (state ^ p[i]) * 16777619u;
  return state;
}

uint64_t TraceHeader::block_bytes(int64_t tokens) const {
  return kTraceBlockHeaderBytes +
         static_cast<uint64_t>(tokens) * (2 + 6 * static_cast<uint64_t>(top_k));
}

void TraceHeader::validate() const {
  auto check = [](const char* field, int64_t value, int64_t min, int64_t max) {
    if (value < min || value > max) {
      throw Error(fmt::format("trace header: {}: expected an integer in [{}, {}], got {}", field,
                              min, max, value));
    }
  };
  check("experts", experts, 1, kMaxTraceExperts);
  check("top_k", top_k, 1, std::min(experts, kMaxTraceTopK));
  check("moe_layers", moe_layers, 1, kMaxTraceMoeLayers);
  check("steps", steps, 1, kMaxTraceSteps);
  check("ranks", ranks, 1, kMaxTraceRanks);
  if (static_cast<int64_t>(experts) * moe_layers > kMaxTraceExpertLayers) {
    throw Error(fmt::format(
        "trace header: experts x moe_layers = {} x {} exceeds the limit of {} expert-layers",
        experts, moe_layers, kMaxTraceExpertLayers));
  }
  if (blocks() > kMaxTraceBlocks) {
    throw Error(fmt::format(
        "trace header: steps x moe_layers = {} x {} = {} blocks exceeds the limit of {}", steps,
        moe_layers, blocks(), kMaxTraceBlocks));
  }
}

Json TraceHeader::to_json() const {
  return Json{{"format", "moetrace"}, {"version", kTraceFormatVersion},
              {"model", model},       {"experts", experts},
              {"top_k", top_k},       {"moe_layers", moe_layers},
              {"steps", steps},       {"blocks", blocks()},
              {"ranks", ranks},       {"generator", generator},
              {"seed", seed}};
}

namespace {
const TraceHeader& validated(const TraceHeader& h) {
  h.validate();
  return h;
}
}  // namespace

TraceWriter::TraceWriter(const std::string& path, const TraceHeader& header)
    : header_(validated(header)), out_(path) {
  const std::string h = header.to_json().dump();
  std::string head(kMagic, 8);
  put<uint32_t>(head, kTraceFormatVersion);
  put<uint32_t>(head, static_cast<uint32_t>(h.size()));
  head += h;
  put<uint32_t>(head, fnv1a32(h.data(), h.size()));
  out_.write(head);
  bytes_ = head.size();
}

void TraceWriter::write(int step, int layer, const RoutingBatch& b) {
  const std::string& path = out_.path();
  if (blocks_written_ >= header_.blocks()) {
    throw Error(fmt::format("{}: more blocks than the header's {}", path, header_.blocks()));
  }
  const int expected_step = static_cast<int>(blocks_written_ / header_.moe_layers);
  const int expected_layer = static_cast<int>(blocks_written_ % header_.moe_layers);
  if (step != expected_step || layer != expected_layer) {
    throw Error(fmt::format("{}: block for step {} layer {} where step {} layer {} comes next",
                            path, step, layer, expected_step, expected_layer));
  }
  const int k = header_.top_k;
  if (b.top_k != k || b.tokens < 1 || b.tokens > kMaxTraceBlockRoutings / k) {
    throw Error(fmt::format(
        "{}: step {} layer {}: {} tokens x top-{} (the header says top-{}; a block holds 1 to "
        "{} routings)",
        path, step, layer, b.tokens, b.top_k, k, kMaxTraceBlockRoutings));
  }
  const ContentProblem problem = check_content(b, header_, seen_);
  if (problem.field != ContentProblem::Field::kNone) {
    throw Error(fmt::format("{}: step {} layer {}: {}", path, step, layer, problem.what));
  }
  const int64_t copies = b.tokens * k;
  buffer_.clear();
  put<uint32_t>(buffer_, kBlockMagic);
  put<uint32_t>(buffer_, static_cast<uint32_t>(step));
  put<uint32_t>(buffer_, static_cast<uint32_t>(layer));
  put<uint64_t>(buffer_, static_cast<uint64_t>(b.tokens));
  put<uint32_t>(buffer_, 0);  // checksum, filled in below
  for (int64_t t = 0; t < b.tokens; ++t)
    put<uint16_t>(buffer_, static_cast<uint16_t>(b.source_rank[t]));
  for (int64_t i = 0; i < copies; ++i) put<uint16_t>(buffer_, static_cast<uint16_t>(b.expert[i]));
  buffer_.append(reinterpret_cast<const char*>(b.weight.data()), static_cast<size_t>(copies) * 4);
  const uint32_t checksum =
      fnv1a32(buffer_.data() + kTraceBlockHeaderBytes, buffer_.size() - kTraceBlockHeaderBytes,
              fnv1a32(buffer_.data(), kTraceBlockHeaderBytes - 4));
  std::memcpy(buffer_.data() + kTraceBlockHeaderBytes - 4, &checksum, 4);
  out_.write(buffer_);
  bytes_ += buffer_.size();
  ++blocks_written_;
}

void TraceWriter::finish() {
  if (blocks_written_ != header_.blocks()) {
    throw Error(fmt::format("{}: {} of the header's {} blocks written", out_.path(),
                            blocks_written_, header_.blocks()));
  }
  out_.commit();
}

TraceReader::TraceReader(std::unique_ptr<std::istream> in, uint64_t size_bytes, std::string name)
    : path_(std::move(name)), in_(std::move(in)), size_bytes_(size_bytes) {
  read_header();
}

namespace {
// The file, opened after checking it is a regular one, and its size.
std::unique_ptr<std::istream> open_trace(const std::string& path, uint64_t& size_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(
        fmt::format("{}: not a regular file (a trace is read from a file whose size "
                    "bounds its counts)",
                    path));
  }
  size_bytes = static_cast<uint64_t>(st.st_size);
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*in) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  return in;
}
}  // namespace

TraceReader::TraceReader(const std::string& path) : path_(path) {
  in_ = open_trace(path, size_bytes_);
  read_header();
}

TraceReader TraceReader::from_memory(std::string bytes, const std::string& name) {
  const uint64_t size = bytes.size();
  return TraceReader(std::make_unique<std::istringstream>(std::move(bytes), std::ios::binary), size,
                     name);
}

void TraceReader::read_header() {
  char magic[8];
  read_exact(magic, 8, "file magic");
  if (std::memcmp(magic, kMagic, 8) != 0) fail(0, "not a moetrace file (bad magic)");
  char v[8];
  read_exact(v, 8, "version and header length");
  version_ = get<uint32_t>(v);
  const uint32_t len = get<uint32_t>(v + 4);
  if (version_ != 1 && version_ != kTraceFormatVersion) {
    fail(8, fmt::format("trace format version {} (this moesim reads versions 1 and {})", version_,
                        kTraceFormatVersion));
  }
  if (len > kMaxHeaderJsonBytes || len > size_bytes_ - kFileHeaderBytes) {
    fail(12, fmt::format("header length {} bytes is more than the file or the limit of {} holds",
                         len, kMaxHeaderJsonBytes));
  }
  std::string text(len, '\0');
  read_exact(text.data(), len, "header");
  if (version_ >= 2) {
    char sum[4];
    read_exact(sum, 4, "header checksum");
    if (get<uint32_t>(sum) != fnv1a32(text.data(), text.size())) {
      fail(kFileHeaderBytes + len, "header checksum mismatch (corrupt header)");
    }
  }
  try {
    const Json j = parse_json(text, "header");
    ConfigObject o(j, "header");
    if (o.string("format") != "moetrace") {
      throw_config_error(o.field_path("format"), "expected \"moetrace\"");
    }
    o.integer("version", version_, version_);
    header_.model = o.string("model");
    header_.experts = static_cast<int>(o.integer("experts", 1, kMaxTraceExperts));
    header_.top_k =
        static_cast<int>(o.integer("top_k", 1, std::min(header_.experts, kMaxTraceTopK)));
    header_.moe_layers = static_cast<int>(o.integer("moe_layers", 1, kMaxTraceMoeLayers));
    header_.steps = static_cast<int>(o.integer("steps", 1, kMaxTraceSteps));
    if (version_ >= 2) o.integer("blocks", header_.blocks(), header_.blocks());
    header_.ranks = static_cast<int>(o.integer("ranks", 1, kMaxTraceRanks));
    header_.generator = o.string("generator");
    const Json& seed = o.value("seed");
    if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<int64_t>() >= 0)) {
      throw_config_error(o.field_path("seed"),
                         "expected an integer in [0, 2^64), got " + describe_json(seed));
    }
    header_.seed = seed.get<uint64_t>();
    o.finish();
    header_.validate();
  } catch (const Error& e) {
    fail(kFileHeaderBytes, e.what());
  }
  // Every block holds at least one token: the declared count must fit.
  const uint64_t remaining = size_bytes_ - offset_;
  const uint64_t least = static_cast<uint64_t>(header_.blocks()) * header_.block_bytes(1);
  if (least > remaining) {
    fail(offset_,
         fmt::format("truncated or corrupt: the header declares {} steps x {} MoE layers = {} "
                     "blocks, at least {} bytes, but only {} bytes follow it",
                     header_.steps, header_.moe_layers, header_.blocks(), least, remaining));
  }
}

void TraceReader::fail(uint64_t at, const std::string& what) const {
  throw Error(fmt::format("{}: byte {}: {}", path_, at, what));
}

void TraceReader::read_exact(char* dst, size_t n, const char* what) {
  in_->read(dst, static_cast<std::streamsize>(n));
  const auto got = static_cast<uint64_t>(in_->gcount());
  if (got != n) {
    fail(offset_ + got,
         fmt::format("truncated file while reading the {} ({} of {} bytes)", what, got, n));
  }
  offset_ += n;
}

void TraceReader::check_block_header(uint64_t at, uint32_t step, uint32_t layer, uint64_t tokens) {
  // Compared as unsigned: a field >= 2^31 is out of range, never negative.
  if (step >= static_cast<uint32_t>(header_.steps)) {
    fail(at + 4,
         fmt::format("block for step {}, but the header declares {} steps", step, header_.steps));
  }
  if (layer >= static_cast<uint32_t>(header_.moe_layers)) {
    fail(at + 8, fmt::format("block for MoE layer {}, but the header declares {} layers", layer,
                             header_.moe_layers));
  }
  const auto expected_step = static_cast<uint32_t>(next_block_ / header_.moe_layers);
  const auto expected_layer = static_cast<uint32_t>(next_block_ % header_.moe_layers);
  if (step != expected_step || layer != expected_layer) {
    fail(at + 4, fmt::format("block for step {} layer {} where step {} layer {} was expected "
                             "(blocks come in order, each once)",
                             step, layer, expected_step, expected_layer));
  }
  const auto max_tokens = static_cast<uint64_t>(kMaxTraceBlockRoutings / header_.top_k);
  if (tokens < 1 || tokens > max_tokens) {
    fail(at + 12, fmt::format("block of {} tokens (a block holds 1 to {} tokens at top-{})", tokens,
                              max_tokens, header_.top_k));
  }
  const uint64_t need = header_.block_bytes(static_cast<int64_t>(tokens));
  if (need > size_bytes_ - at) {
    fail(at + 12,
         fmt::format("truncated or corrupt: a block of {} tokens needs {} bytes but only {} remain "
                     "in the file",
                     tokens, need, size_bytes_ - at));
  }
}

bool TraceReader::next(int& step, int& layer, RoutingBatch& b) {
  if (next_block_ == header_.blocks()) {
    if (offset_ < size_bytes_) {
      fail(offset_, fmt::format("{} bytes after the header's last block (of {}): repeated or "
                                "foreign data",
                                size_bytes_ - offset_, header_.blocks()));
    }
    return false;
  }
  if (offset_ >= size_bytes_) {
    fail(offset_, fmt::format("truncated file: it ends after {} of the header's {} blocks",
                              next_block_, header_.blocks()));
  }
  const uint64_t at = offset_;
  char head[kTraceBlockHeaderBytes];
  read_exact(head, kTraceBlockHeaderBytes, "block header");
  if (get<uint32_t>(head) != kBlockMagic) fail(at, "corrupt block header (bad block magic)");
  const uint32_t block_step = get<uint32_t>(head + 4), block_layer = get<uint32_t>(head + 8);
  const uint64_t tokens = get<uint64_t>(head + 12);
  check_block_header(at, block_step, block_layer, tokens);
  const size_t bytes = header_.block_bytes(static_cast<int64_t>(tokens)) - kTraceBlockHeaderBytes;
  payload_.resize(bytes);
  read_exact(payload_.data(), bytes, "block payload");
  // Version 2 checksums the block header too; version 1 only the payload.
  const uint32_t state = version_ >= 2 ? fnv1a32(head, kTraceBlockHeaderBytes - 4) : kFnv1a32Offset;
  if (fnv1a32(payload_.data(), bytes, state) != get<uint32_t>(head + 20)) {
    fail(at + 20, "block checksum mismatch (corrupt block)");
  }
  decode_payload(at + kTraceBlockHeaderBytes, static_cast<int64_t>(tokens), b);
  step = static_cast<int>(block_step);
  layer = static_cast<int>(block_layer);
  ++next_block_;
  return true;
}

void TraceReader::decode_payload(uint64_t at, int64_t tokens, RoutingBatch& b) {
  const int k = header_.top_k;
  const int64_t copies = tokens * k;
  b.resize(tokens, k, header_.experts);
  const char* p = payload_.data();
  for (int64_t t = 0; t < tokens; ++t, p += 2) b.source_rank[t] = get<uint16_t>(p);
  for (int64_t i = 0; i < copies; ++i, p += 2) b.expert[i] = get<uint16_t>(p);
  std::memcpy(b.weight.data(), p, static_cast<size_t>(copies) * 4);
  const ContentProblem problem = check_content(b, header_, seen_);
  using Field = ContentProblem::Field;
  switch (problem.field) {
    case Field::kNone:
      return;
    case Field::kSourceRank:
      fail(at + 2 * static_cast<uint64_t>(problem.index), problem.what);
    case Field::kExpert:
      fail(at + 2 * static_cast<uint64_t>(tokens + problem.index), problem.what);
    case Field::kWeight:
      fail(at + 2 * static_cast<uint64_t>(tokens + copies) +
               4 * static_cast<uint64_t>(problem.index),
           problem.what);
  }
}

}  // namespace moesim::workloads
