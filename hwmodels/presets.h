#pragma once
// Looking up the embedded preset files and applying a user's overrides.

#include <string>
#include <vector>

#include "sim/core/config.h"

namespace moesim::hw {

// The preset file "<kind>-<name>.json" (kind "gpu" or "cluster"), parsed.
// Throws moesim::Error naming `path` and listing the known names if absent.
Json load_preset(const std::string& kind, const std::string& name, const std::string& path);
std::vector<std::string> preset_names(const std::string& kind);

// Resolves a preset reference: a string names a preset; an object with
// "preset" is that preset with the object's other fields merged over it
// (nested objects merge field by field); any other object is taken as is.
Json resolve_preset_reference(const std::string& kind, const Json& value, const std::string& path);

}  // namespace moesim::hw
