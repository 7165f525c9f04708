#pragma once
// User-facing errors. Anything a user can cause (bad config, bad file, impossible
// request) is thrown as moesim::Error with a one-line message that names the
// offending field or byte offset; the CLI turns it into that line and exit code 2.
// Programmer errors use assertions instead.

#include <stdexcept>
#include <string>

namespace moesim {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace moesim
