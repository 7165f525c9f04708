// `moesim models`: the model catalog; `moesim models show NAME` resolves one
// preset with its derived totals.

#include <iostream>

#include <fmt/format.h>

#include "reports/json_output.h"
#include "sim/app/commands.h"
#include "workloads/model_config.h"

namespace moesim::cli {

int models_main(const Args& args) {
  po::options_description options("models options");
  std::string action, name;
  int64_t seq_len = 4096;
  options.add_options()("action", po::value(&action), "show")("name", po::value(&name), "model")(
      "seq-len", po::value(&seq_len), "sequence length for flops_per_token (default 4096)")(
      "json", "print JSON");
  po::positional_options_description positional;
  positional.add("action", 1).add("name", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim models [--json]            list the catalog\n"
             "       moesim models show NAME [--json] [--seq-len N]")) {
    return 0;
  }
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
  if (action != "show") throw Error(fmt::format("unknown action '{}' (expected: show)", action));
  if (name.empty()) throw Error("models show: missing model name (see moesim models)");
  const auto m = workloads::resolve_model(Json(name), "model");
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
