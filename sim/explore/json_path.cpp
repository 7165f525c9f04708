#include "sim/explore/json_path.h"

#include <fmt/format.h>

#include "sim/core/error.h"

namespace moesim::explore {

void set_json_path(Json& doc, const std::string& path, const Json& value,
                   const std::string& where) {
  Json* at = &doc;
  size_t start = 0;
  for (;;) {
    const size_t dot = path.find('.', start);
    const std::string key =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (key.empty()) throw Error(fmt::format("{}: empty component in path '{}'", where, path));
    if (!at->is_object()) {
      throw Error(fmt::format("{}: '{}' crosses a non-object at '{}'", where, path, key));
    }
    if (dot == std::string::npos) {
      (*at)[key] = value;
      return;
    }
    // A preset reference given as a string becomes {"preset": name} so that
    // fields can be overridden ("cluster.nodes" on "cluster": "dgx-h100").
    if (at->contains(key) && (*at)[key].is_string()) {
      (*at)[key] = Json{{"preset", (*at)[key]}};
    }
    // Missing sections are created ("options.seed" on a scenario without options).
    if (!at->contains(key)) (*at)[key] = Json::object();
    at = &(*at)[key];
    start = dot + 1;
  }
}

Json get_json_path(const Json& doc, const std::string& path) {
  const Json* at = &doc;
  size_t start = 0;
  for (;;) {
    const size_t dot = path.find('.', start);
    const std::string key =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!at->is_object() || !at->contains(key)) return nullptr;
    at = &(*at)[key];
    if (dot == std::string::npos) return *at;
    start = dot + 1;
  }
}

std::string scenario_hash(const Json& scenario) {
  const std::string s = scenario.dump();  // nlohmann::json keeps keys sorted
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return fmt::format("{:016x}", h);
}

}  // namespace moesim::explore
