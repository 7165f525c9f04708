#pragma once
// Reading configuration (scenarios, presets, sweep files) from JSON.
//
// All validation of user input goes through ConfigObject so every error looks
// the same: the JSON path of the field, what was expected, what was found,
//   cluster.nodes: expected a positive integer, got -1
// Unknown fields are errors too (finish()), so a typo is never silently ignored.

#include <cstdint>
#include <initializer_list>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace moesim {

using Json = nlohmann::json;

// Deepest nesting of arrays and objects parse_json accepts. Real documents
// nest fewer than 10 levels; the cap keeps the recursive tree operations
// (copy, dump, merge) far from the stack's end on any thread.
inline constexpr size_t kMaxJsonDepth = 512;

// Parses JSON text. Errors are moesim::Error, one line:
//   syntax error, number overflow  "<source>: byte <offset>: invalid JSON: <reason>"
//   nesting deeper than kMaxJsonDepth  "<source>: byte <offset>: invalid JSON: nested deeper ..."
//   a key given twice in an object  "<source>: <json path>: duplicate key"
// Depth and duplicates are checked on the text before any tree is built.
Json parse_json(std::string_view text, const std::string& source);
// The same checks without building a tree, for code that parses the text
// into another JSON type (the ordered JSON of sweep files and reports).
void check_json_text(std::string_view text, const std::string& source);
// Largest JSON file load_json_file reads: a tree takes ~6 bytes of memory per
// byte of text, so this bounds a load near 400 MB (README "Limits").
inline constexpr size_t kMaxJsonFileBytes = size_t{64} << 20;
// Reads and parses a file; a missing or too large file is a one-line moesim::Error too.
Json load_json_file(const std::string& path);

// Throws moesim::Error("<path>: <message>").
[[noreturn]] void throw_config_error(const std::string& path, const std::string& message);

// Joins a parent path and a key the way errors print them: "cluster" + "nodes"
// -> "cluster.nodes", "" + "model" -> "model", "axes" + 3 -> "axes[3]".
std::string join_path(const std::string& parent, std::string_view key);
std::string join_path(const std::string& parent, size_t index);

// A view of one JSON object that remembers which fields were read.
// REQUIRES: the Json outlives the ConfigObject.
class ConfigObject {
 public:
  // Throws if `value` is not an object.
  ConfigObject(const Json& value, std::string path);

  const std::string& path() const { return path_; }
  std::string field_path(std::string_view key) const { return join_path(path_, key); }
  bool has(std::string_view key) const;

  // Getters check type and range and mark the field as read. The *_or forms
  // return `fallback` when the field is absent (but still validate it if present).
  int64_t integer(std::string_view key, int64_t min, int64_t max);
  int64_t integer_or(std::string_view key, int64_t fallback, int64_t min, int64_t max);
  double number(std::string_view key, double min, double max);
  double number_or(std::string_view key, double fallback, double min, double max);
  bool boolean(std::string_view key);
  bool boolean_or(std::string_view key, bool fallback);
  std::string string(std::string_view key);
  std::string string_or(std::string_view key, std::string fallback);
  // A string that must be one of `allowed`.
  std::string choice(std::string_view key, std::initializer_list<std::string_view> allowed);
  std::string choice_or(std::string_view key, std::string fallback,
                        std::initializer_list<std::string_view> allowed);
  // A nested object; the caller validates it (and calls its finish()).
  ConfigObject object(std::string_view key);
  // Raw access for fields with several accepted shapes; marks the field read.
  const Json& value(std::string_view key);

  // Throws for the first field that no getter read: "<path>.<key>: unknown field".
  void finish() const;

 private:
  const Json& require(std::string_view key);
  const Json* json_;
  std::string path_;
  std::set<std::string, std::less<>> used_;
};

// Validation helpers usable on bare values (array elements, etc.).
int64_t expect_integer(const Json& v, const std::string& path, int64_t min, int64_t max);
double expect_number(const Json& v, const std::string& path, double min, double max);
std::string expect_string(const Json& v, const std::string& path);
// Merges `patch` into `base`: nested objects field by field, anything else
// replaced (how user overrides apply over presets).
void merge_json_into(Json& base, const Json& patch);
// A short rendering of a JSON value for error messages (truncated).
std::string describe_json(const Json& v);

}  // namespace moesim
