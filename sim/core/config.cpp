#include "sim/core/config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/core/file_io.h"

namespace moesim {

Json parse_json(std::string_view text, const std::string& source) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's message is "[json.exception.parse_error.101] parse error at
    // line 1, column 2: ..."; keep the reason, state the byte offset plainly.
    std::string what = e.what();
    const auto colon = what.find(": ");
    std::string reason = colon == std::string::npos ? what : what.substr(colon + 2);
    // e.byte is 1-based (the character that failed); report the 0-based offset.
    const size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    throw Error(fmt::format("{}: byte {}: invalid JSON: {}", source, offset, reason));
  }
}

Json load_json_file(const std::string& path) {
  return parse_json(read_file(path), path);
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
