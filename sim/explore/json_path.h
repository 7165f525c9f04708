#pragma once
// Scenario fields addressed by dot-separated JSON paths ("gating.capacity_factor").

#include <string>

#include "sim/core/config.h"

namespace moesim::explore {

// Sets doc[path] = value, creating intermediate objects. Throws moesim::Error
// naming `where` if a path component crosses a non-object.
void set_json_path(Json& doc, const std::string& path, const Json& value, const std::string& where);
// The value at `path`, or null if absent.
Json get_json_path(const Json& doc, const std::string& path);

// FNV-1a 64 of the canonical dump (keys sorted): a stable point identity.
std::string scenario_hash(const Json& scenario);

}  // namespace moesim::explore
