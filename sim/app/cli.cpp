#include "sim/app/cli.h"

#include <sys/resource.h>

#include <filesystem>

#include "sim/app/bench.h"
#include "sim/core/config.h"
#include "sim/core/embedded.h"

#include <iostream>

#include <fmt/format.h>

#include "sim/core/file_io.h"

namespace moesim::cli {
namespace examples {
std::span<const moesim::EmbeddedFile> embedded_files();
}

nlohmann::json embedded_example(const std::string& file_name) {
  for (const EmbeddedFile& f : examples::embedded_files()) {
    if (f.name == file_name) return parse_json(f.content, "examples/" + file_name);
  }
  throw Error("no embedded example " + file_name);
}

bool parse(const Args& args, const po::options_description& options,
           const po::positional_options_description& positional, po::variables_map& vm,
           std::string_view usage) {
  po::options_description all;
  all.add_options()("help,h", "show this help");
  all.add(options);
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usage << "\n\n" << all << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(e.what());
  }
  return true;
}

void emit(const std::string& rendered, const std::string& path_or_empty) {
  if (path_or_empty.empty() || path_or_empty == "-") {
    std::cout << rendered;
    std::cout.flush();
  } else {
    write_file_atomic(path_or_empty, rendered);
  }
}

void check_jobs(int jobs) {
  if (jobs < 1 || jobs > 256) throw Error("--jobs: expected an integer in [1, 256]");
}

nlohmann::json cluster_argument(const std::string& value) {
  if (value.ends_with(".json") || std::filesystem::exists(value)) return load_json_file(value);
  return nlohmann::json(value);
}

double peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024;  // ru_maxrss is in KiB on Linux
}

}  // namespace moesim::cli
