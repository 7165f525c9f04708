#include "sim/core/config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/core/file_io.h"

namespace moesim {

namespace {

// Where and why a JSON text is unacceptable, found before the document tree is
// built: nlohmann's parser is iterative, but copying, dumping and merging a
// tree recurse once per nesting level, and its DOM builder silently keeps the
// last of two equal keys.
[[noreturn]] void throw_json_error(const std::string& source, size_t offset,
                                   const std::string& reason) {
  throw Error(fmt::format("{}: byte {}: invalid JSON: {}", source, offset, reason));
}

// nlohmann's messages read "[json.exception.parse_error.101] parse error at
// line 1, column 2: syntax error ..." or "[json.exception.out_of_range.406]
// number overflow parsing '1e99999'": keep the reason only (the caller states
// the byte offset plainly).
std::string json_reason(const std::string& what) {
  std::string reason = what;
  if (reason.starts_with("[json.exception.")) {
    const auto close = reason.find("] ");
    if (close != std::string::npos) reason = reason.substr(close + 2);
  }
  if (reason.starts_with("parse error")) {
    const auto colon = reason.find(": ");
    if (colon != std::string::npos) reason = reason.substr(colon + 2);
  }
  return reason;
}

// Rejects nesting deeper than kMaxJsonDepth with the byte offset of the first
// bracket too many. Brackets inside strings do not count.
void check_json_depth(std::string_view text, const std::string& source) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw_json_error(source, i,
                         fmt::format("nested deeper than {} levels (the limit)", kMaxJsonDepth));
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

// A SAX pass over the text that builds nothing: it finds syntax errors and
// number overflows (with their byte offset) and duplicate object keys (with
// their JSON path), so that the tree built afterwards is exactly the text.
class JsonTextCheck {
 public:
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(number_integer_t) { return value(); }
  bool number_unsigned(number_unsigned_t) { return value(); }
  bool number_float(number_float_t, const string_t&) { return value(); }
  bool string(string_t&) { return value(); }
  bool binary(binary_t&) { return value(); }
  bool start_object(size_t) {
    frames_.push_back(Frame{true, 0, {}, {}});
    return true;
  }
  bool key(string_t& name) {
    Frame& f = frames_.back();
    if (!f.keys.insert(name).second) {
      duplicate_ = join_path(path(frames_.size() - 1), name);
      return false;
    }
    f.key = name;
    return true;
  }
  bool end_object() { return end_container(); }
  bool start_array(size_t) {
    frames_.push_back(Frame{false, 0, {}, {}});
    return true;
  }
  bool end_array() { return end_container(); }
  bool parse_error(size_t position, const std::string& last_token,
                   const nlohmann::detail::exception& ex) {
    // Syntax errors point at the character that failed (position is 1-based);
    // a number that does not fit a double points at the number's first byte.
    const bool overflow = ex.id == 406;
    error_offset_ = overflow && position >= last_token.size() ? position - last_token.size()
                    : position > 0                            ? position - 1
                                                              : 0;
    error_reason_ = json_reason(ex.what());
    return false;
  }

  const std::string& duplicate() const { return duplicate_; }
  const std::string& error_reason() const { return error_reason_; }
  size_t error_offset() const { return error_offset_; }

 private:
  struct Frame {
    bool object;
    size_t index;  // arrays: elements seen so far
    std::string key;
    std::set<std::string, std::less<>> keys;
  };
  bool value() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
    return true;
  }
  bool end_container() {
    frames_.pop_back();
    return value();
  }
  // The path of the value the first `depth` frames lead to.
  std::string path(size_t depth) const {
    std::string p;
    for (size_t i = 0; i < depth; ++i) {
      p = frames_[i].object ? join_path(p, frames_[i].key) : join_path(p, frames_[i].index);
    }
    return p;
  }

  std::vector<Frame> frames_;
  std::string duplicate_, error_reason_;
  size_t error_offset_ = 0;
};

}  // namespace

void check_json_text(std::string_view text, const std::string& source) {
  check_json_depth(text, source);
  JsonTextCheck check;
  if (!Json::sax_parse(text.begin(), text.end(), &check)) {
    if (!check.duplicate().empty()) {
      throw Error(fmt::format("{}: {}: duplicate key", source, check.duplicate()));
    }
    throw_json_error(source, check.error_offset(), check.error_reason());
  }
}

Json parse_json(std::string_view text, const std::string& source) {
  check_json_text(text, source);
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // Not reached for text the check accepted; kept so no library text escapes.
    throw Error(fmt::format("{}: invalid JSON: {}", source, json_reason(e.what())));
  }
}

Json load_json_file(const std::string& path) {
  return parse_json(read_file(path, kMaxJsonFileBytes), path);
}

void throw_config_error(const std::string& path, const std::string& message) {
  throw Error(path.empty() ? message : fmt::format("{}: {}", path, message));
}

std::string join_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return fmt::format("{}.{}", parent, key);
}

std::string join_path(const std::string& parent, size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

std::string describe_json(const Json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

namespace {

std::string range_phrase(int64_t min, int64_t max) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (min == 1 && max == kMax) return "a positive integer";
  if (min == 0 && max == kMax) return "a non-negative integer";
  if (max == kMax) return fmt::format("an integer >= {}", min);
  return fmt::format("an integer in [{}, {}]", min, max);
}

std::string range_phrase(double min, double max) {
  const double inf = std::numeric_limits<double>::infinity();
  if (min == 0 && max == inf) return "a non-negative number";
  if (max == inf) return fmt::format("a number >= {}", min);
  if (min == -inf) return fmt::format("a number <= {}", max);
  return fmt::format("a number in [{}, {}]", min, max);
}

}  // namespace

int64_t expect_integer(const Json& v, const std::string& path, int64_t min, int64_t max) {
  int64_t x = 0;
  bool ok = false;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      ok = false;
    } else {
      x = v.get<int64_t>();
      ok = true;
    }
  } else if (v.is_number_float()) {
    // Accept 1e6 and 4096.0 but not 2.5.
    const double d = v.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e18) {
      x = static_cast<int64_t>(d);
      ok = true;
    }
  }
  if (!ok || x < min || x > max) {
    throw_config_error(
        path, fmt::format("expected {}, got {}", range_phrase(min, max), describe_json(v)));
  }
  return x;
}

double expect_number(const Json& v, const std::string& path, double min, double max) {
  if (!v.is_number()) {
    throw_config_error(
        path, fmt::format("expected {}, got {}", range_phrase(min, max), describe_json(v)));
  }
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    throw_config_error(
        path, fmt::format("expected {}, got {}", range_phrase(min, max), describe_json(v)));
  }
  return x;
}

std::string expect_string(const Json& v, const std::string& path) {
  if (!v.is_string()) {
    throw_config_error(path, fmt::format("expected a string, got {}", describe_json(v)));
  }
  return v.get<std::string>();
}

ConfigObject::ConfigObject(const Json& value, std::string path)
    : json_(&value), path_(std::move(path)) {
  if (!value.is_object()) {
    throw_config_error(path_.empty() ? "(top level)" : path_,
                       fmt::format("expected a JSON object, got {}", describe_json(value)));
  }
}

bool ConfigObject::has(std::string_view key) const {
  return json_->contains(key);
}

const Json& ConfigObject::require(std::string_view key) {
  auto it = json_->find(key);
  if (it == json_->end()) throw_config_error(field_path(key), "required field is missing");
  used_.emplace(key);
  return *it;
}

const Json& ConfigObject::value(std::string_view key) {
  return require(key);
}

int64_t ConfigObject::integer(std::string_view key, int64_t min, int64_t max) {
  return expect_integer(require(key), field_path(key), min, max);
}

int64_t ConfigObject::integer_or(std::string_view key, int64_t fallback, int64_t min, int64_t max) {
  return has(key) ? integer(key, min, max) : fallback;
}

double ConfigObject::number(std::string_view key, double min, double max) {
  return expect_number(require(key), field_path(key), min, max);
}

double ConfigObject::number_or(std::string_view key, double fallback, double min, double max) {
  return has(key) ? number(key, min, max) : fallback;
}

bool ConfigObject::boolean(std::string_view key) {
  const Json& v = require(key);
  if (!v.is_boolean()) {
    throw_config_error(field_path(key),
                       fmt::format("expected true or false, got {}", describe_json(v)));
  }
  return v.get<bool>();
}

bool ConfigObject::boolean_or(std::string_view key, bool fallback) {
  return has(key) ? boolean(key) : fallback;
}

std::string ConfigObject::string(std::string_view key) {
  return expect_string(require(key), field_path(key));
}

std::string ConfigObject::string_or(std::string_view key, std::string fallback) {
  return has(key) ? string(key) : fallback;
}

std::string ConfigObject::choice(std::string_view key,
                                 std::initializer_list<std::string_view> allowed) {
  std::string s = string(key);
  for (auto a : allowed) {
    if (s == a) return s;
  }
  throw_config_error(field_path(key),
                     fmt::format("expected one of {}, got \"{}\"", fmt::join(allowed, "|"), s));
}

std::string ConfigObject::choice_or(std::string_view key, std::string fallback,
                                    std::initializer_list<std::string_view> allowed) {
  return has(key) ? choice(key, allowed) : fallback;
}

ConfigObject ConfigObject::object(std::string_view key) {
  return ConfigObject(require(key), field_path(key));
}

void ConfigObject::finish() const {
  for (auto it = json_->begin(); it != json_->end(); ++it) {
    if (!used_.contains(it.key())) throw_config_error(field_path(it.key()), "unknown field");
  }
}

void merge_json_into(Json& base, const Json& patch) {
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_object() && base.contains(it.key()) && base[it.key()].is_object()) {
      merge_json_into(base[it.key()], it.value());
    } else {
      base[it.key()] = it.value();
    }
  }
}

}  // namespace moesim
