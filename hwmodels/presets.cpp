#include "hwmodels/presets.h"

#include <span>

#include <fmt/format.h>

#include "sim/core/embedded.h"

namespace moesim::hw {
namespace presets {
std::span<const moesim::EmbeddedFile> embedded_files();
}

std::vector<std::string> preset_names(const std::string& kind) {
  std::vector<std::string> out;
  const std::string prefix = kind + "-";
  for (const EmbeddedFile& f : presets::embedded_files()) {
    if (f.name.starts_with(prefix) && f.name.ends_with(".json")) {
      out.emplace_back(f.name.substr(prefix.size(), f.name.size() - prefix.size() - 5));
    }
  }
  return out;
}

Json load_preset(const std::string& kind, const std::string& name, const std::string& path) {
  const std::string file = kind + "-" + name + ".json";
  for (const EmbeddedFile& f : presets::embedded_files()) {
    if (f.name == file) return parse_json(f.content, "preset " + file);
  }
  std::string known;
  for (const auto& n : preset_names(kind)) known += (known.empty() ? "" : ", ") + n;
  throw_config_error(path, fmt::format("unknown {} preset '{}' (known: {})", kind, name, known));
}

namespace {}  // namespace

Json resolve_preset_reference(const std::string& kind, const Json& value, const std::string& path) {
  if (value.is_string()) return load_preset(kind, value.get<std::string>(), path);
  if (!value.is_object()) {
    throw_config_error(path, fmt::format("expected a {} preset name or an object, got {}", kind,
                                         describe_json(value)));
  }
  if (!value.contains("preset")) return value;
  const Json& name = value["preset"];
  if (!name.is_string()) {
    throw_config_error(join_path(path, "preset"),
                       "expected a preset name, got " + describe_json(name));
  }
  Json merged = load_preset(kind, name.get<std::string>(), join_path(path, "preset"));
  Json patch = value;
  patch.erase("preset");
  merge_json_into(merged, patch);
  return merged;
}

}  // namespace moesim::hw
