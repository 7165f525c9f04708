// `moesim search`: rank every valid parallel strategy for a model on a
// cluster (sim/explore/search.h), printed as a table, JSON or CSV.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "sim/app/commands.h"
#include "sim/app/explore/point_runner.h"
#include "sim/core/file_io.h"
#include "sim/explore/search.h"

namespace moesim::cli {
namespace {

// The ranking as JSON (the command's --json and -o output).
OrderedJson search_json(const explore::SearchRequest& r, const std::string& cluster_name,
                        const explore::SearchResult& result) {
  OrderedJson out;
  out["model"] = r.model;
  out["cluster"] = cluster_name;
  out["gpus"] = r.gpus;
  out["global_batch"] = r.global_batch;
  out["seq_len"] = r.seq_len;
  out["enumerated"] = result.enumerated;
  out["simulated"] = result.ranking.size();
  OrderedJson rej = OrderedJson::object();
  for (const auto& [k, v] : result.rejected) rej[k] = v;
  out["rejected"] = rej;
  OrderedJson ranking = OrderedJson::array();
  int rank = 1;
  for (const explore::SearchCandidate& c : result.ranking) {
    OrderedJson e{{"dp", c.dp},
                  {"tp", c.tp},
                  {"cp", c.cp},
                  {"pp", c.pp},
                  {"ep", c.ep},
                  {"etp", c.etp},
                  {"micro_batch_size", c.micro_batch_size},
                  {"recompute", c.recompute},
                  {"zero_stage", c.zero_stage}};
    e["rank"] = rank++;
    e["step_time_s"] = c.step_time_s;
    e["tokens_per_s_per_gpu"] = c.tokens_per_s_per_gpu;
    e["mfu"] = c.mfu;
    e["memory_headroom_bytes"] = c.memory_headroom_bytes;
    e["bottleneck"] = c.bottleneck;
    ranking.push_back(e);
  }
  out["ranking"] = ranking;
  return out;
}

std::string ranking_csv(const OrderedJson& result) {
  std::string s =
      "rank,dp,tp,cp,pp,ep,etp,micro_batch_size,recompute,zero_stage,step_time_s,"
      "tokens_per_s_per_gpu,mfu,memory_headroom_bytes,bottleneck\n";
  for (const auto& e : result["ranking"]) {
    s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", e["rank"].get<int>(),
                     e["dp"].get<int>(), e["tp"].get<int>(), e["cp"].get<int>(), e["pp"].get<int>(),
                     e["ep"].get<int>(), e["etp"].get<int>(), e["micro_batch_size"].get<int>(),
                     e["recompute"].get<std::string>(), e["zero_stage"].get<int>(),
                     e["step_time_s"].get<double>(), e["tokens_per_s_per_gpu"].get<double>(),
                     e["mfu"].get<double>(), e["memory_headroom_bytes"].get<double>(),
                     e["bottleneck"].get<std::string>());
  }
  return s;
}

struct SearchArgs {
  explore::SearchRequest request;
  std::string cluster;  // as given
  int top = 10;
};

SearchArgs parse_request(const Args& args, po::variables_map& vm, bool& help, bool bench) {
  po::options_description options(bench ? "bench search options" : "search options");
  SearchArgs a;
  explore::SearchRequest& r = a.request;
  std::string out, inference;
  options.add_options()("model", po::value(&r.model), "model preset")(
      "cluster", po::value(&a.cluster), "cluster preset or JSON file")(
      "gpus", po::value(&r.gpus), "GPUs to use")("global-batch", po::value(&r.global_batch),
                                                 "sequences per step")(
      "seq", po::value(&r.seq_len), "sequence length (default 4096)")("top", po::value(&a.top),
                                                                      "rows to print (default 10)")(
      "jobs,j", po::value(&r.jobs), "threads (default 2)")("inference", po::value(&inference),
                                                           "not supported yet")(
      "output,o", po::value<std::string>(), "write the ranking as JSON and CSV (<o>.csv)")(
      "json", "print the full ranking as JSON");
  po::positional_options_description positional;
  help = !parse(args, options, positional, vm,
                bench ? "moesim bench search [--json]"
                      : "moesim search --model NAME --cluster PRESET --gpus N --global-batch B "
                        "[--seq L] [--top 10] [--json] [-o ranking.json] [-j N]");
  if (help) return a;
  if (vm.count("inference")) {
    throw Error(
        "--inference: inference (prefill/decode) is not modelled yet; search covers "
        "training");
  }
  if (bench) {
    if (r.model.empty()) r.model = "mixtral-8x22b";
    if (a.cluster.empty()) a.cluster = "dgx-h100";
    if (!r.gpus) r.gpus = 256;
    if (!r.global_batch) r.global_batch = 1024;
  }
  if (r.model.empty()) throw Error("--model: required (see moesim models)");
  if (a.cluster.empty()) throw Error("--cluster: required (see moesim presets)");
  if (r.gpus < 1) throw Error("--gpus: expected a positive integer");
  if (r.global_batch < 1) throw Error("--global-batch: expected a positive integer");
  if (r.seq_len < 1) throw Error("--seq: expected a positive integer");
  if (r.jobs < 1 || r.jobs > 256) throw Error("--jobs: expected an integer in [1, 256]");
  r.cluster = cluster_argument(a.cluster);
  return a;
}

}  // namespace

int search_main(const Args& args) {
  po::variables_map vm;
  bool help = false;
  const SearchArgs a = parse_request(args, vm, help, false);
  if (help) return 0;
  const explore::SearchRequest& r = a.request;
  const OrderedJson result =
      search_json(r, a.cluster,
                  explore::search_strategies(r, progress_printer("search: checking"),
                                             progress_printer("search: simulating")));
  if (vm.count("output")) {
    const std::string path = vm["output"].as<std::string>();
    write_file_atomic(path, render_json(result));
    write_file_atomic(path + ".csv", ranking_csv(result));
  }
  if (vm.count("json")) {
    std::cout << render_json(result);
    return 0;
  }
  std::cout << fmt::format("{} on {} GPUs of {}: {} combinations, {} simulated, rejected:", r.model,
                           r.gpus, a.cluster, result["enumerated"].get<int>(),
                           result["simulated"].get<size_t>());
  for (const auto& [k, v] : result["rejected"].items())
    std::cout << " " << k << "=" << v.get<int>();
  std::cout << fmt::format(
      "\n{:>4} {:>4} {:>3} {:>3} {:>3} {:>4} {:>4} {:>4} {:>13} {:>5} {:>12} {:>6} "
      "{:>10}  {}\n",
      "rank", "dp", "tp", "cp", "pp", "ep", "etp", "mbs", "recompute", "zero", "tok/s/GPU", "MFU",
      "free GiB", "bottleneck");
  int shown = 0;
  for (const auto& e : result["ranking"]) {
    if (shown++ >= a.top) break;
    std::cout << fmt::format(
        "{:>4} {:>4} {:>3} {:>3} {:>3} {:>4} {:>4} {:>4} {:>13} {:>5} {:>12.1f} "
        "{:>5.1f}% {:>10.1f}  {}\n",
        e["rank"].get<int>(), e["dp"].get<int>(), e["tp"].get<int>(), e["cp"].get<int>(),
        e["pp"].get<int>(), e["ep"].get<int>(), e["etp"].get<int>(),
        e["micro_batch_size"].get<int>(), e["recompute"].get<std::string>(),
        e["zero_stage"].get<int>(), e["tokens_per_s_per_gpu"].get<double>(),
        100 * e["mfu"].get<double>(), e["memory_headroom_bytes"].get<double>() / (1ull << 30),
        e["bottleneck"].get<std::string>());
  }
  return 0;
}

int bench_search_main(const Args& args) {
  po::variables_map vm;
  bool help = false;
  const SearchArgs a = parse_request(args, vm, help, true);
  if (help) return 0;
  const explore::SearchRequest& r = a.request;
  const auto start = std::chrono::steady_clock::now();
  const OrderedJson result = search_json(r, a.cluster, explore::search_strategies(r, {}, {}));
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  OrderedJson out;
  out["benchmark"] = "search";
  out["model"] = r.model;
  out["gpus"] = r.gpus;
  out["enumerated"] = result["enumerated"];
  out["simulated"] = result["simulated"];
  out["rejected"] = result["rejected"];
  out["wall_seconds"] = wall;
  out["points_per_second"] = result["enumerated"].get<double>() / wall;
  out["best"] = result["ranking"].empty() ? OrderedJson(nullptr) : result["ranking"][0];
  out["peak_rss_bytes"] = peak_rss_bytes();
  std::cout << render_json(out);
  return 0;
}

}  // namespace moesim::cli
