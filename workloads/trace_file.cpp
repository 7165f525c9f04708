#include "workloads/trace_file.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "sim/core/error.h"

namespace moesim::workloads {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'E', 'T', 'R', 'A', 'C', 'E'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kBlockMagic = 0x314B4C42;  // "BLK1"
constexpr size_t kBlockHeaderBytes = 4 + 4 + 4 + 8 + 4;

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

}  // namespace

uint32_t fnv1a32(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

Json TraceHeader::to_json() const {
  return Json{{"format", "moetrace"}, {"version", kVersion}, {"model", model},
              {"experts", experts},   {"top_k", top_k},      {"moe_layers", moe_layers},
              {"steps", steps},       {"ranks", ranks},      {"generator", generator},
              {"seed", seed}};
}

TraceWriter::TraceWriter(const std::string& path, const TraceHeader& header)
    : path_(path), tmp_(path + ".tmp"), header_(header) {
  if (header.experts > 65535 || header.ranks > 65535) {
    throw Error("trace: at most 65535 experts and ranks are supported");
  }
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) throw Error(fmt::format("{}: cannot write", path));
  const std::string h = header.to_json().dump();
  std::string head(kMagic, 8);
  put<uint32_t>(head, kVersion);
  put<uint32_t>(head, static_cast<uint32_t>(h.size()));
  head += h;
  out_.write(head.data(), static_cast<std::streamsize>(head.size()));
  bytes_ = head.size();
}

TraceWriter::~TraceWriter() {
  if (!finished_) {
    out_.close();
    std::remove(tmp_.c_str());
  }
}

void TraceWriter::write(int step, int layer, const RoutingBatch& b) {
  const int64_t copies = b.tokens * b.top_k;
  buffer_.resize(static_cast<size_t>(b.tokens * 2 + copies * 6));
  char* p = buffer_.data();
  for (int64_t t = 0; t < b.tokens; ++t, p += 2) {
    const uint16_t v = static_cast<uint16_t>(b.source_rank[t]);
    std::memcpy(p, &v, 2);
  }
  for (int64_t i = 0; i < copies; ++i, p += 2) {
    const uint16_t v = static_cast<uint16_t>(b.expert[i]);
    std::memcpy(p, &v, 2);
  }
  std::memcpy(p, b.weight.data(), static_cast<size_t>(copies) * 4);
  std::string head;
  put<uint32_t>(head, kBlockMagic);
  put<uint32_t>(head, static_cast<uint32_t>(step));
  put<uint32_t>(head, static_cast<uint32_t>(layer));
  put<uint64_t>(head, static_cast<uint64_t>(b.tokens));
  put<uint32_t>(head, fnv1a32(buffer_.data(), buffer_.size()));
  out_.write(head.data(), static_cast<std::streamsize>(head.size()));
  out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  bytes_ += head.size() + buffer_.size();
  if (!out_) throw Error(fmt::format("{}: write failed", path_));
}

void TraceWriter::finish() {
  out_.flush();
  out_.close();
  if (!out_) throw Error(fmt::format("{}: write failed", path_));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    throw Error(fmt::format("{}: cannot rename the finished trace into place", path_));
  }
  finished_ = true;
}

TraceReader::TraceReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  if (!in_) throw Error(fmt::format("{}: cannot open", path));
  char magic[8];
  read_exact(magic, 8, "file magic");
  if (std::memcmp(magic, kMagic, 8) != 0) fail(0, "not a moetrace file (bad magic)");
  char v[8];
  read_exact(v, 8, "version and header length");
  const uint32_t version = get<uint32_t>(v), len = get<uint32_t>(v + 4);
  if (version != kVersion) {
    fail(8,
         fmt::format("trace format version {} (this moesim reads version {})", version, kVersion));
  }
  if (len > (1u << 24)) fail(12, "header length implausible");
  std::string h(len, '\0');
  read_exact(h.data(), len, "header");
  const Json j = parse_json(h, path + " header");
  try {
    header_.model = j.at("model").get<std::string>();
    header_.experts = j.at("experts").get<int>();
    header_.top_k = j.at("top_k").get<int>();
    header_.moe_layers = j.at("moe_layers").get<int>();
    header_.steps = j.at("steps").get<int>();
    header_.ranks = j.at("ranks").get<int>();
    header_.generator = j.at("generator").get<std::string>();
    header_.seed = j.at("seed").get<uint64_t>();
  } catch (const Json::exception& e) {
    fail(16, std::string("header: ") + e.what());
  }
  if (header_.experts < 1 || header_.top_k < 1 || header_.top_k > header_.experts ||
      header_.moe_layers < 1 || header_.ranks < 1) {
    fail(16, "header: experts, top_k, moe_layers and ranks must be positive (top_k <= experts)");
  }
}

void TraceReader::fail(uint64_t at, const std::string& what) const {
  throw Error(fmt::format("{}: byte {}: {}", path_, at, what));
}

void TraceReader::read_exact(char* dst, size_t n, const char* what) {
  in_.read(dst, static_cast<std::streamsize>(n));
  if (static_cast<size_t>(in_.gcount()) != n) {
    fail(offset_ + in_.gcount(), fmt::format("truncated file while reading the {} ({} of {} bytes)",
                                             what, in_.gcount(), n));
  }
  offset_ += n;
}

bool TraceReader::next(int& step, int& layer, RoutingBatch& b) {
  if (in_.peek() == std::char_traits<char>::eof()) return false;
  const uint64_t at = offset_;
  char head[kBlockHeaderBytes];
  read_exact(head, kBlockHeaderBytes, "block header");
  if (get<uint32_t>(head) != kBlockMagic) fail(at, "corrupt block header (bad block magic)");
  step = static_cast<int>(get<uint32_t>(head + 4));
  layer = static_cast<int>(get<uint32_t>(head + 8));
  const uint64_t tokens = get<uint64_t>(head + 12);
  const uint32_t checksum = get<uint32_t>(head + 20);
  if (layer >= header_.moe_layers) {
    fail(at + 8, fmt::format("block for MoE layer {}, but the header declares {} layers", layer,
                             header_.moe_layers));
  }
  if (step >= header_.steps)
    fail(at + 4, fmt::format("block for step {} of {}", step, header_.steps));
  if (tokens > (uint64_t{1} << 36)) fail(at + 12, "token count implausible");
  const int k = header_.top_k;
  const size_t bytes = static_cast<size_t>(tokens) * (2 + 6 * static_cast<size_t>(k));
  payload_.resize(bytes);
  read_exact(payload_.data(), bytes, "block payload");
  if (fnv1a32(payload_.data(), bytes) != checksum) {
    fail(at + kBlockHeaderBytes, "block checksum mismatch (corrupt data)");
  }
  b.resize(static_cast<int64_t>(tokens), k, header_.experts);
  const char* p = payload_.data();
  for (uint64_t t = 0; t < tokens; ++t, p += 2) {
    b.source_rank[t] = get<uint16_t>(p);
    if (b.source_rank[t] >= header_.ranks) {
      fail(at + kBlockHeaderBytes + t * 2,
           fmt::format("source rank {} >= {} ranks", b.source_rank[t], header_.ranks));
    }
  }
  const uint64_t copies = tokens * k;
  for (uint64_t i = 0; i < copies; ++i, p += 2) {
    b.expert[i] = get<uint16_t>(p);
    if (b.expert[i] >= header_.experts) {
      fail(static_cast<uint64_t>(at + kBlockHeaderBytes + (p - payload_.data())),
           fmt::format("expert id {} >= the model's {} experts", b.expert[i], header_.experts));
    }
  }
  std::memcpy(b.weight.data(), p, copies * 4);
  return true;
}

}  // namespace moesim::workloads
