#pragma once
// File helpers with user-facing errors.

#include <string>
#include <string_view>

namespace moesim {

// Whole file as bytes; throws moesim::Error "<path>: cannot open: <reason>".
std::string read_file(const std::string& path);

// Writes `content` to a temporary file next to `path`, flushes it to disk and
// renames it over `path`, so readers see either the old file or the complete
// new one, never a half-written report. Creates missing parent directories.
void write_file_atomic(const std::string& path, std::string_view content);

}  // namespace moesim
