#include "sim/scenario/pipeline_layout.h"

#include <cctype>

#include <fmt/format.h>

#include "sim/exec/pipeline_schedule.h"
#include "sim/scenario/strategy.h"

namespace moesim::scenario {
namespace {

// Unrolled text beyond this is a mistake, not a model (a 100,000-layer model
// with its "|" fits many times over).
constexpr size_t kMaxUnrolled = 1'000'000;

class Unroller {
 public:
  Unroller(const std::string& text, const std::string& path) : text_(text), path_(path) {}

  // Megatron-Core's two passes: "(group)*n", then "x*n".
  std::string run() {
    std::string groups;
    for (size_t i = 0; i < text_.size();) {
      if (text_[i] != '(') {
        groups += text_[i++];
        continue;
      }
      const size_t close = text_.find(')', i);
      const size_t nested = text_.find('(', i + 1);
      if (close == std::string::npos) fail(i, "'(' without its ')'");
      if (nested < close) fail(nested, "groups do not nest (Megatron-Core's syntax)");
      if (close + 1 >= text_.size() || text_[close + 1] != '*') {
        fail(close, "a group \"(...)\" must be followed by *n");
      }
      size_t end = close + 2;
      const size_t count = number(end);
      append(groups, text_.substr(i + 1, close - i - 1), count);
      i = end;
    }
    std::string out;
    for (size_t i = 0; i < groups.size(); ++i) {
      if (i + 1 < groups.size() && groups[i + 1] == '*') {
        size_t end = i + 2;
        const std::string one(1, groups[i]);
        const size_t count = number(end, groups);
        append(out, one, count);
        i = end - 1;
        continue;
      }
      if (groups[i] == '*') fail(i, "'*' must follow a character or a group");
      out += groups[i];
    }
    return out;
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& why) const {
    throw_config_error(path_, fmt::format("{} (at character {} of \"{}\")", why, at + 1, text_));
  }
  size_t number(size_t& at) const { return number(at, text_); }
  size_t number(size_t& at, const std::string& in) const {
    const size_t start = at;
    size_t n = 0;
    while (at < in.size() && std::isdigit(static_cast<unsigned char>(in[at]))) {
      n = n * 10 + static_cast<size_t>(in[at++] - '0');
      if (n > kMaxUnrolled) fail(start, fmt::format("a repeat count over {}", kMaxUnrolled));
    }
    if (at == start) fail(start, "'*' must be followed by a count");
    return n;
  }
  void append(std::string& out, const std::string& piece, size_t count) const {
    if (out.size() + piece.size() * count > kMaxUnrolled) {
      fail(0, fmt::format("unrolls past {} characters", kMaxUnrolled));
    }
    for (size_t k = 0; k < count; ++k) out += piece;
  }

  const std::string& text_;
  const std::string& path_;
};

}  // namespace

std::vector<exec::LayoutStage> parse_pipeline_layout(const std::string& text,
                                                     const std::string& path) {
  std::string cleaned;
  for (char c : text) {
    if (c != ',') cleaned += c;  // purely cosmetic, as in Megatron-Core
  }
  const std::string unrolled = Unroller(cleaned, path).run();
  std::vector<exec::LayoutStage> stages(1);
  for (size_t i = 0; i < unrolled.size(); ++i) {
    exec::LayoutStage& stage = stages.back();
    switch (unrolled[i]) {
      case '|':
        stages.emplace_back();
        break;
      case 't':
        if (stage.mtp_layers > 0) throw_config_error(path, "every \"m\" must follow every \"t\"");
        ++stage.model_layers;
        break;
      case 'm':
        ++stage.mtp_layers;
        break;
      case 'E':
        if (stage.embedding || stage.model_layers + stage.mtp_layers > 0 || stage.loss) {
          throw_config_error(path, "\"E\" (the embedding) must come first, once");
        }
        stage.embedding = true;
        break;
      case 'L':
        if (stage.loss) throw_config_error(path, "\"L\" (the loss) appears twice");
        stage.loss = true;
        break;
      default:
        throw_config_error(path, fmt::format("'{}' is not a layer: use E (embedding), t "
                                             "(transformer layer), m (MTP module), L (loss), "
                                             "| between virtual stages",
                                             unrolled[i]));
    }
    if (unrolled[i] != 'L' && unrolled[i] != '|' && stages.back().loss) {
      throw_config_error(path, "\"L\" (the loss) must come last");
    }
  }
  return stages;
}

void check_pipeline_layout(const exec::ModelShape& m, const exec::ParallelConfig& p) {
  const std::vector<exec::LayoutStage>& stages = p.layout;
  auto fail = [&](const std::string& why) {
    throw InvalidStrategy("pipeline_layout",
                          fmt::format("parallel.pipeline_layout: {} (\"{}\")", why, p.layout_text));
  };
  const int count = exec::stage_count(p);
  if (static_cast<int>(stages.size()) != count) {
    fail(fmt::format("{} virtual stages, but pp x virtual_stages = {} x {} = {}{}", stages.size(),
                     p.pp, exec::chunks_per_rank(p), count,
                     p.moe_a2a_overlap == exec::MoeA2aOverlap::kDualPipe ? " (DualPipe: pp)" : ""));
  }
  int model_layers = 0, mtp_layers = 0, embeddings = 0, losses = 0, mtp_stages = 0;
  for (int v = 0; v < count; ++v) {
    const exec::LayoutStage& s = stages[v];
    if (s.model_layers + s.mtp_layers == 0 && !s.embedding && !s.loss) {
      fail(
          fmt::format("virtual stage {} is empty (every virtual stage needs a layer, the "
                      "embedding or the loss)",
                      v));
    }
    if (s.model_layers > 0 && mtp_layers > 0) fail("every \"m\" must follow every \"t\"");
    if (s.mtp_layers > 0) {
      ++mtp_stages;
      const bool last_chunk =
          p.moe_a2a_overlap == exec::MoeA2aOverlap::kDualPipe || v >= count - p.pp;
      if (!last_chunk) {
        fail(
            fmt::format("the MTP modules are in virtual stage {}, which is not its pipeline "
                        "rank's last (Megatron-Core places them in a rank's last)",
                        v));
      }
    }
    model_layers += s.model_layers;
    mtp_layers += s.mtp_layers;
    embeddings += s.embedding ? 1 : 0;
    losses += s.loss ? 1 : 0;
  }
  if (embeddings != 1 || !stages.front().embedding) fail("\"E\" must begin the first stage, once");
  if (losses != 1 || !stages.back().loss) fail("\"L\" must end the last stage, once");
  if (model_layers != m.model_layers()) {
    fail(fmt::format("{} \"t\", but the model has {} layers", model_layers, m.model_layers()));
  }
  if (mtp_layers != m.mtp_layers) {
    fail(fmt::format("{} \"m\", but the model trains {} MTP modules (model.mtp_layers)", mtp_layers,
                     m.mtp_layers));
  }
  if (mtp_stages > 1) fail("the MTP modules must share one virtual stage");
}

}  // namespace moesim::scenario
