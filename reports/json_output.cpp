#include "reports/json_output.h"

#include "sim/core/file_io.h"

namespace moesim {

std::string render_json(const OrderedJson& doc) {
  // Non-finite numbers would print as null silently; reports never hold them,
  // and the strict error handler rejects invalid UTF-8 in strings.
  std::string s = doc.dump(2, ' ', false, nlohmann::json::error_handler_t::strict);
  s.push_back('\n');
  return s;
}

void write_json_file(const std::string& path, const OrderedJson& doc) {
  write_file_atomic(path, render_json(doc));
}

}  // namespace moesim
