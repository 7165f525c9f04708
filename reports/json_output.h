#pragma once
// Writing JSON documents (reports, benchmark results) to stdout or files.
//
// Reports use nlohmann::ordered_json so fields appear in the order the schema
// documents them; output is byte-for-byte deterministic for the same content.

#include <string>

#include <nlohmann/json.hpp>

namespace moesim {

using OrderedJson = nlohmann::ordered_json;

// Pretty-printed (2-space indent) with a trailing newline.
std::string render_json(const OrderedJson& doc);
// Atomic write (temp file + rename) of render_json(doc).
void write_json_file(const std::string& path, const OrderedJson& doc);

}  // namespace moesim
