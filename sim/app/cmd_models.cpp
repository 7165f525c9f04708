// `moesim models`: the model catalog; `moesim models show NAME` resolves one
// preset with its derived totals; `moesim models import config.json` turns a
// HuggingFace config.json into a catalog entry.

#include <iostream>

#include <fmt/format.h>

#include "reports/json_output.h"
#include "sim/app/commands.h"
#include "sim/core/config.h"
#include "workloads/model_config.h"
#include "workloads/model_import.h"

namespace moesim::cli {
namespace {

// `models import CONFIG [-o FILE] [--name NAME]`: the entry goes to FILE
// (atomically) with a summary on stdout, or to stdout without -o.
int import_model(const std::string& config_path, const std::string& output,
                 const std::string& name) {
  if (config_path.empty()) throw Error("models import: missing config.json path");
  auto imported = workloads::import_hf_config(load_json_file(config_path), config_path);
  workloads::MoeModelConfig& m = imported.model;
  if (!name.empty()) m.name = name;
  const std::string rendered = workloads::catalog_entry_json(m, imported.sources).dump(2) + "\n";
  emit(rendered, output);
  if (!output.empty() && output != "-") {
    std::cout << fmt::format(
        "{}: {} convention, {} layers ({} MoE), {} experts top-{}, {:.2f}B total, {:.2f}B "
        "active -> {}\n",
        m.name, imported.convention, m.layers, m.moe_layer_count(), m.routed_experts, m.top_k,
        m.total_params() / 1e9, m.active_params() / 1e9, output);
  }
  return 0;
}

}  // namespace

int models_main(const Args& args) {
  po::options_description options("models options");
  std::string action, target, output, name;
  int64_t seq_len = 4096;
  options.add_options()("action", po::value(&action), "show | import")(
      "target", po::value(&target), "model name (show) or config.json (import)")(
      "seq-len", po::value(&seq_len), "sequence length for flops_per_token (default 4096)")(
      "json", "print JSON")("output,o", po::value(&output),
                            "import: write the catalog entry here (default: stdout)")(
      "name", po::value(&name), "import: the entry's name (default: from _name_or_path)");
  po::positional_options_description positional;
  positional.add("action", 1).add("target", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim models [--json]            list the catalog\n"
             "       moesim models show NAME [--json] [--seq-len N]\n"
             "       moesim models import config.json [-o model.json] [--name NAME]\n"
             "           read a HuggingFace config.json of an MoE model (Mixtral, Qwen2/3-MoE,\n"
             "           DeepSeek-V2/V3 and Kimi K2, gpt-oss, Llama 4 conventions) and write\n"
             "           a catalog entry, usable as \"model\" in a scenario")) {
    return 0;
  }
  if (action == "import") return import_model(target, output, name);
  if (!output.empty() || !name.empty()) throw Error("-o and --name go with models import");
  if (seq_len < 1) throw Error("--seq-len: expected a positive integer");
  const bool json = vm.count("json") > 0;
  if (action.empty()) {
    Json out = Json::array();
    for (const auto& e : workloads::list_models()) {
      const auto m = workloads::resolve_model(Json(e.name), "model");
      out.push_back({{"name", e.name},
                     {"description", e.description},
                     {"total_params", m.total_params()},
                     {"active_params", m.active_params()},
                     {"routed_experts", m.routed_experts},
                     {"top_k", m.top_k}});
    }
    if (json) {
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    std::cout << fmt::format("{:<20} {:>9} {:>9} {:>8} {:>5}  {}\n", "model", "total", "active",
                             "experts", "top-k", "description");
    for (const auto& m : out) {
      std::cout << fmt::format("{:<20} {:>8.1f}B {:>8.1f}B {:>8} {:>5}  {}\n",
                               m["name"].get<std::string>(), m["total_params"].get<double>() / 1e9,
                               m["active_params"].get<double>() / 1e9,
                               m["routed_experts"].get<int>(), m["top_k"].get<int>(),
                               m["description"].get<std::string>());
    }
    return 0;
  }
  if (action != "show") {
    throw Error(fmt::format("unknown action '{}' (expected: show or import)", action));
  }
  if (target.empty()) throw Error("models show: missing model name (see moesim models)");
  const auto m = workloads::resolve_model(Json(target), "model");
  const Json j = workloads::model_json(m, seq_len);
  if (json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format(
      "{}: {}\n  total {:.2f}B params, active {:.2f}B, {:.3g} forward "
      "FLOPs/token at seq {}\n",
      m.name, m.description, m.total_params() / 1e9, m.active_params() / 1e9,
      m.flops_per_token(seq_len), seq_len);
  std::cout << j.dump(2) << "\n";
  return 0;
}

}  // namespace moesim::cli
