#pragma once
// Shared plumbing for subcommands: option parsing with one-line errors.
//
// Exit codes: 0 success, 2 user error (bad option, bad input: moesim::Error),
// 1 internal error.

#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "sim/core/error.h"

namespace moesim::cli {

namespace po = boost::program_options;

using Args = std::vector<std::string>;

// A subcommand: `moesim <name> args...`.
struct Command {
  std::string_view name;
  std::string_view summary;  // one line for `moesim --help`
  int (*main)(const Args& args);
};

// Parses `args` against `options` (and positional names). Adds --help itself:
// returns false after printing "usage" and the options when --help is given.
// Unknown options and bad values throw moesim::Error naming the option.
bool parse(const Args& args, const po::options_description& options,
           const po::positional_options_description& positional, po::variables_map& vm,
           std::string_view usage);

// Checks a --jobs value (threads for points or scenarios run side by side):
// throws moesim::Error naming --jobs unless it is in [1, 256].
void check_jobs(int jobs);

// A --cluster argument: a JSON file (path ending in .json or existing) is
// loaded, anything else is taken as a preset name.
nlohmann::json cluster_argument(const std::string& value);

// Writes a JSON document (already rendered) to stdout or, atomically, to a file.
void emit(const std::string& rendered, const std::string& path_or_empty);

// One of examples/*.json, compiled into the binary.
nlohmann::json embedded_example(const std::string& file_name);

}  // namespace moesim::cli
