#pragma once
// A data file compiled into the binary (see cmake/MoesimEmbed.cmake).

#include <string_view>

namespace moesim {

struct EmbeddedFile {
  std::string_view name;     // file name without directory, e.g. "h100-sxm.json"
  std::string_view content;  // the file's bytes
};

}  // namespace moesim
