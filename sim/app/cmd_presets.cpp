// `moesim presets`: the GPU and cluster presets, listed or one resolved.

#include <iostream>
#include <string>

#include <fmt/format.h>

#include "hwmodels/cluster.h"
#include "sim/app/commands.h"

namespace moesim::cli {

int presets_main(const Args& args) {
  po::options_description options("presets options");
  std::string show;
  options.add_options()("show", po::value(&show), "print one resolved preset")("json",
                                                                               "print JSON");
  po::positional_options_description positional;
  positional.add("show", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm, "moesim presets [NAME] [--json]")) return 0;
  if (!show.empty()) {
    bool cluster = false, gpu = false;
    std::string known;
    for (const auto& p : hw::list_presets()) {
      cluster |= p.kind == "cluster" && p.name == show;
      gpu |= p.kind == "gpu" && p.name == show;
      known += fmt::format("{}{} ({})", known.empty() ? "" : ", ", p.name, p.kind);
    }
    if (!cluster && !gpu) {
      throw Error(fmt::format("preset: unknown preset '{}' (known: {})", show, known));
    }
    // In the input format: written to a file, a `--cluster` file or a
    // scenario's "cluster" (a GPU: a cluster's "gpu").
    const Json j = cluster ? hw::cluster_input_json(hw::resolve_cluster(Json(show), "preset"))
                           : hw::gpu_input_json(hw::resolve_gpu(Json(show), "preset"));
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  const auto presets = hw::list_presets();
  if (vm.count("json")) {
    Json out = Json::array();
    for (const auto& p : presets) {
      out.push_back({{"kind", p.kind}, {"name", p.name}, {"description", p.description}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& p : presets) {
    std::cout << fmt::format("{:<8} {:<15} {}\n", p.kind, p.name, p.description);
  }
  std::cout << "(clusters are sized with \"nodes\" in a scenario or --nodes N)\n";
  return 0;
}

}  // namespace moesim::cli
