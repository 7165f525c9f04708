// `moesim search`: rank every valid parallel strategy for a model on a
// cluster (sim/explore/search.h), or with --mode inference every serving
// layout under a request load (sim/explore/search_inference.h), printed as a
// table, JSON or CSV.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "sim/app/commands.h"
#include "sim/app/explore/distributed.h"
#include "sim/app/explore/point_runner.h"
#include "sim/core/file_io.h"
#include "sim/explore/search.h"
#include "sim/explore/search_inference.h"
#include "workloads/requests.h"

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
  out["dtype"] = r.dtype;
  out["routing"] = r.routing;
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
                  {"virtual_stages", c.virtual_stages},
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
      "rank,dp,tp,cp,pp,virtual_stages,ep,etp,micro_batch_size,recompute,zero_stage,step_time_s,"
      "tokens_per_s_per_gpu,mfu,memory_headroom_bytes,bottleneck\n";
  for (const auto& e : result["ranking"]) {
    s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", e["rank"].get<int>(),
                     e["dp"].get<int>(), e["tp"].get<int>(), e["cp"].get<int>(), e["pp"].get<int>(),
                     e["virtual_stages"].get<int>(), e["ep"].get<int>(), e["etp"].get<int>(),
                     e["micro_batch_size"].get<int>(), e["recompute"].get<std::string>(),
                     e["zero_stage"].get<int>(), e["step_time_s"].get<double>(),
                     e["tokens_per_s_per_gpu"].get<double>(), e["mfu"].get<double>(),
                     e["memory_headroom_bytes"].get<double>(), e["bottleneck"].get<std::string>());
  }
  return s;
}

struct SearchArgs {
  explore::SearchRequest request;
  explore::InferenceSearchRequest inference;
  bool inference_mode = false;
  std::string cluster;  // as given
  int top = 10;
};

// Options that belong to one mode only; naming one in the other mode is an
// error rather than silently ignored.
constexpr const char* kTrainingOnly[] = {"global-batch", "seq", "virtual-stages"};
constexpr const char* kInferenceOnly[] = {
    "requests-rate",     "concurrency",    "requests",    "input-tokens",
    "output-tokens",     "slo-tpot-ms",    "slo-ttft-ms", "max-batch-sizes",
    "redundant-experts", "disaggregation", "max-layouts",
};

// "64,256" -> {64, 256}; each value in [min, 2^24].
std::vector<int> parse_sizes(const std::string& list, const char* flag, int min = 1) {
  std::vector<int> sizes;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string item = list.substr(start, comma - start);
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < min || v > (1 << 24)) {
      throw Error(fmt::format("{}: expected comma-separated integers in [{}, {}], got '{}'", flag,
                              min, 1 << 24, list));
    }
    sizes.push_back(static_cast<int>(v));
    start = comma + 1;
  }
  return sizes;
}

// "1024" -> [1024, 1024]; "512-1536" -> [512, 1536] (uniform lengths; the
// search checks that the range is not reversed).
void parse_length(const std::string& text, const char* flag, int64_t& low, int64_t& high) {
  auto number = [&](const std::string& item) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > workloads::kMaxRequestTokens) {
      throw Error(fmt::format("{}: expected tokens N or a range MIN-MAX, each in [1, {}], got '{}'",
                              flag, workloads::kMaxRequestTokens, text));
    }
    return static_cast<int64_t>(v);
  };
  const size_t dash = text.find('-');
  low = number(text.substr(0, dash));
  high = dash == std::string::npos ? low : number(text.substr(dash + 1));
}

// The inference flags given as text, parsed by inference_request.
struct InferenceLists {
  std::string max_batch_sizes, redundant_experts, input_tokens, output_tokens;
};

// Checks the flags of --mode inference and fills a.inference.
void inference_request(const po::variables_map& vm, const InferenceLists& lists, SearchArgs& a) {
  for (const char* flag : kTrainingOnly) {
    if (vm.count(flag)) {
      throw Error(
          fmt::format("--{}: a training option; --mode inference takes a request load "
                      "(--requests-rate or --concurrency)",
                      flag));
    }
  }
  explore::InferenceSearchRequest& r = a.inference;
  if (!vm.count("requests-rate") && !vm.count("concurrency")) {
    throw Error(
        "--mode inference: give a request load, --requests-rate R (Poisson) or --concurrency C "
        "(closed loop)");
  }
  if (vm.count("requests-rate") && vm.count("concurrency")) {
    throw Error("--requests-rate, --concurrency: give one of them, not both");
  }
  if (vm.count("requests-rate") && !(r.rate_per_s > 0 && std::isfinite(r.rate_per_s))) {
    throw Error(
        fmt::format("--requests-rate: expected requests per second > 0, got {}", r.rate_per_s));
  }
  if (vm.count("concurrency") && r.concurrency < 1) {
    throw Error(fmt::format("--concurrency: expected a positive integer, got {}", r.concurrency));
  }
  if (!vm.count("slo-tpot-ms")) {
    throw Error(
        "--slo-tpot-ms: required with --mode inference (goodput counts the requests "
        "meeting it)");
  }
  if (vm.count("max-batch-sizes"))
    r.max_batch_sizes = parse_sizes(lists.max_batch_sizes, "--max-batch-sizes");
  if (vm.count("redundant-experts"))
    r.redundant_experts = parse_sizes(lists.redundant_experts, "--redundant-experts", 0);
  if (vm.count("input-tokens"))
    parse_length(lists.input_tokens, "--input-tokens", r.input_tokens, r.input_tokens_max);
  if (vm.count("output-tokens"))
    parse_length(lists.output_tokens, "--output-tokens", r.output_tokens, r.output_tokens_max);
  r.disaggregation = vm.count("disaggregation") > 0;
  r.model = a.request.model;
  r.cluster = a.request.cluster;
  r.gpus = a.request.gpus;
  r.jobs = a.request.jobs;
}

SearchArgs parse_request(const Args& args, po::variables_map& vm, bool& help, bool bench) {
  po::options_description options(bench ? "bench search options" : "search options");
  SearchArgs a;
  explore::SearchRequest& r = a.request;
  explore::InferenceSearchRequest& inf = a.inference;
  std::string out, mode = "training", virtual_stages = "1";
  InferenceLists lists;
  options.add_options()("model", po::value(&r.model), "model preset")(
      "cluster", po::value(&a.cluster), "cluster preset or JSON file")(
      "gpus", po::value(&r.gpus), "GPUs to use")("global-batch", po::value(&r.global_batch),
                                                 "sequences per step")(
      "seq", po::value(&r.seq_len), "sequence length (default 4096)")("top", po::value(&a.top),
                                                                      "rows to print (default 10)")(
      "jobs,j", po::value(&r.jobs),
      "threads per process (default 2); under mpirun the ranks share the simulations")(
      "output,o", po::value<std::string>(), "write the ranking as JSON and CSV (<o>.csv)")(
      "json", "print the full ranking as JSON")(
      "virtual-stages", po::value(&virtual_stages),
      "training: virtual pipeline stages per rank to try where pp > 1, comma-separated "
      "(default 1; e.g. 1,2,4 adds Megatron-Core's interleaved schedule)")(
      "routing", po::value(&r.routing),
      "every candidate's routing generator (default zipf:0.5; uniform for force-balanced "
      "routing; see Routing generators)")(
      "dtype", po::value(&r.dtype),
      "bf16 (default) or fp8: training's GEMMs (FP8 with BF16 Adam moments, as the "
      "ModelZoo's FP8 recipe), or serving's weights and GEMMs");
  if (!bench) {
    options.add_options()("mode", po::value(&mode),
                          "training (default): parallel strategies for a training step; "
                          "inference: serving layouts under a request load")(
        "requests-rate", po::value(&inf.rate_per_s), "inference: Poisson arrivals, requests/s")(
        "concurrency", po::value(&inf.concurrency),
        "inference: closed loop, requests in flight over the cluster")(
        "requests", po::value(&inf.requests), "inference: requests per layout (default 1000)")(
        "input-tokens", po::value(&lists.input_tokens),
        "inference: prompt tokens per request, N or a uniform range MIN-MAX (default 1024)")(
        "output-tokens", po::value(&lists.output_tokens),
        "inference: generated tokens per request, N or MIN-MAX (default 256)")(
        "slo-tpot-ms", po::value(&inf.slo_tpot_ms),
        "inference: time-per-output-token objective, ms (required)")(
        "slo-ttft-ms", po::value(&inf.slo_ttft_ms),
        "inference: time-to-first-token objective, ms (optional)")(
        "max-batch-sizes", po::value(&lists.max_batch_sizes),
        "inference: max_batch_size values to try, comma-separated (default 64,256)")(
        "redundant-experts", po::value(&lists.redundant_experts),
        "inference: EPLB replica counts to try where ep > 1, comma-separated (default 0)")(
        "disaggregation",
        "inference: also every prefill/decode split of the nodes, each role SGLang's large-EP "
        "instances of whole nodes")(
        "max-layouts", po::value(&inf.max_layouts),
        "inference: refuse a search of more layouts than this (default 20000, at most 200000)");
  }
  po::positional_options_description positional;
  help = !parse(args, options, positional, vm,
                bench ? "moesim bench search [--json]"
                      : "moesim search --model NAME --cluster PRESET --gpus N --global-batch B "
                        "[--seq L] [--virtual-stages 1,2,4] [--dtype bf16|fp8] [--routing SPEC]\n"
                        "         [--top 10] [--json] [-o ranking.json] [-j N]\n"
                        "       moesim search --mode inference --model NAME --cluster PRESET "
                        "--gpus N\n"
                        "         (--requests-rate R | --concurrency C) --slo-tpot-ms T "
                        "[--slo-ttft-ms T]\n"
                        "         [--requests 1000] [--input-tokens 1024] [--output-tokens 256] "
                        "[--dtype bf16|fp8] [--routing SPEC]\n"
                        "         [--max-batch-sizes 64,256] [--redundant-experts 0,32] "
                        "[--disaggregation] [--max-layouts 20000]\n"
                        "         [--top 10] [--json] [-o ranking.json] [-j N]");
  if (help) return a;
  if (mode != "training" && mode != "inference") {
    throw Error(fmt::format("--mode: expected training or inference, got '{}'", mode));
  }
  a.inference_mode = mode == "inference";
  if (bench) {
    if (r.model.empty()) r.model = "mixtral-8x22b";
    if (a.cluster.empty()) a.cluster = "dgx-h100";
    if (!r.gpus) r.gpus = 256;
    if (!r.global_batch) r.global_batch = 1024;
  }
  if (!a.inference_mode) {
    for (const char* flag : kInferenceOnly) {
      if (vm.count(flag)) throw Error(fmt::format("--{}: only with --mode inference", flag));
    }
  }
  if (r.model.empty()) throw Error("--model: required (see moesim models)");
  if (a.cluster.empty()) throw Error("--cluster: required (see moesim presets)");
  if (r.gpus < 1) throw Error("--gpus: expected a positive integer");
  if (!a.inference_mode && r.global_batch < 1) {
    throw Error("--global-batch: expected a positive integer");
  }
  if (r.seq_len < 1) throw Error("--seq: expected a positive integer");
  if (r.dtype != "bf16" && r.dtype != "fp8") {
    throw Error(fmt::format("--dtype: expected bf16 or fp8, got '{}'", r.dtype));
  }
  inf.dtype = r.dtype;
  inf.routing = r.routing;
  check_jobs(r.jobs);
  if (a.top < 0) throw Error(fmt::format("--top: expected a count of rows >= 0, got {}", a.top));
  r.cluster = cluster_argument(a.cluster);
  r.virtual_stages = parse_sizes(virtual_stages, "--virtual-stages");
  std::sort(r.virtual_stages.begin(), r.virtual_stages.end());
  r.virtual_stages.erase(std::unique(r.virtual_stages.begin(), r.virtual_stages.end()),
                         r.virtual_stages.end());
  if (r.virtual_stages.back() > 1024) {
    throw Error(fmt::format("--virtual-stages: {} is more than 1024 virtual stages per rank",
                            r.virtual_stages.back()));
  }
  if (a.inference_mode) inference_request(vm, lists, a);
  return a;
}

// One role of a disaggregated serving layout as JSON.
OrderedJson role_json(const explore::InferenceInstances& i) {
  return OrderedJson{{"nodes", i.nodes},
                     {"tp", i.tp},
                     {"attention_dp", i.attention_dp},
                     {"ep", i.ep},
                     {"instances", i.instances}};
}

// The serving ranking as JSON (--mode inference's --json and -o output).
OrderedJson inference_search_json(const explore::InferenceSearchRequest& r,
                                  const std::string& cluster_name,
                                  const explore::InferenceSearchResult& result) {
  OrderedJson out;
  out["mode"] = "inference";
  out["model"] = r.model;
  out["cluster"] = cluster_name;
  out["gpus"] = r.gpus;
  out["dtype"] = r.dtype;
  out["routing"] = r.routing;
  out["requests"] = OrderedJson::parse(explore::inference_search_requests(r).dump());
  out["slo"] = {{"tpot_ms", r.slo_tpot_ms},
                {"ttft_ms", r.slo_ttft_ms > 0 ? OrderedJson(r.slo_ttft_ms) : OrderedJson(nullptr)}};
  out["disaggregation"] = r.disaggregation;
  out["redundant_experts"] = r.redundant_experts;
  out["enumerated"] = result.enumerated;
  out["simulated"] = result.ranking.size();
  OrderedJson rej = OrderedJson::object();
  for (const auto& [k, v] : result.rejected) rej[k] = v;
  out["rejected"] = rej;
  out["warnings"] = result.warnings;
  OrderedJson ranking = OrderedJson::array();
  int rank = 1;
  for (const explore::InferenceCandidate& c : result.ranking) {
    const explore::InferenceLayout& l = c.layout;
    auto colocated = [&](int v) { return l.disaggregated ? OrderedJson(nullptr) : OrderedJson(v); };
    OrderedJson e;
    e["rank"] = rank++;
    e["tp"] = colocated(l.tp);
    e["attention_dp"] = colocated(l.attention_dp);
    e["ep"] = colocated(l.ep);
    e["instances"] = colocated(l.instances);
    e["disaggregation"] = l.disaggregated ? OrderedJson{{"prefill", role_json(l.prefill)},
                                                        {"decode", role_json(l.decode)}}
                                          : OrderedJson(nullptr);
    e["two_batch_overlap"] = l.two_batch_overlap;
    e["max_batch_size"] = l.max_batch_size;
    e["redundant_experts"] = l.redundant_experts;
    e["goodput_requests_per_s_per_gpu"] = c.goodput_requests_per_s_per_gpu;
    e["goodput_requests_per_s"] = c.goodput_requests_per_s;
    e["output_tokens_per_s_per_gpu"] = c.output_tokens_per_s_per_gpu;
    e["tpot_p99_s"] = c.tpot_p99_s;
    e["ttft_p99_s"] = c.ttft_p99_s;
    e["slo_attainment"] = c.slo_attainment;
    e["kv_peak_utilisation"] = c.kv_peak_utilisation;
    ranking.push_back(e);
  }
  out["ranking"] = ranking;
  return out;
}

// A JSON scalar as a CSV cell: empty for null.
std::string csv_value(const OrderedJson& v) {
  return v.is_null() ? std::string() : v.dump();
}

std::string inference_ranking_csv(const OrderedJson& result) {
  constexpr const char* kColumns[] = {"rank",
                                      "tp",
                                      "attention_dp",
                                      "ep",
                                      "instances",
                                      "two_batch_overlap",
                                      "max_batch_size",
                                      "goodput_requests_per_s_per_gpu",
                                      "goodput_requests_per_s",
                                      "output_tokens_per_s_per_gpu",
                                      "tpot_p99_s",
                                      "ttft_p99_s",
                                      "slo_attainment",
                                      "kv_peak_utilisation",
                                      "redundant_experts"};
  constexpr const char* kRoleFields[] = {"nodes", "tp", "attention_dp", "ep", "instances"};
  std::string s;
  for (const char* column : kColumns) s += fmt::format("{}{}", s.empty() ? "" : ",", column);
  for (const char* role : {"prefill", "decode"}) {
    for (const char* field : kRoleFields) s += fmt::format(",{}_{}", role, field);
  }
  s += "\n";
  for (const auto& e : result["ranking"]) {
    std::string row;
    for (const char* column : kColumns) {
      row += fmt::format("{}{}", row.empty() ? "" : ",", csv_value(e[column]));
    }
    for (const char* role : {"prefill", "decode"}) {
      for (const char* field : kRoleFields) {
        const OrderedJson& d = e["disaggregation"];
        row += ',';
        if (!d.is_null()) row += csv_value(d[role][field]);
      }
    }
    s += row + "\n";
  }
  return s;
}

// Runs `search(request, checking, simulating)` over this run's ranks. Under
// mpirun the ranks share the simulations (sim/explore/processes.h): each
// checks every candidate and simulates its share, and rank 0 gathers the
// outcomes. The result on rank 0, which alone prints and writes it; nothing
// on the others. An error on any rank ends every rank (run_on_ranks).
// Progress lines name the rank.
template <typename Request, typename Search>
auto search_on_ranks(Request request, Search search)
    -> std::optional<decltype(search(request, ProgressFn{}, ProgressFn{}))> {
  const Distribution dist = process_distribution();
  request.processes = explore_processes(dist);
  auto progress = [&](const char* pass) {
    return progress_printer(dist.size > 1 ? fmt::format("search rank {}: {}", dist.rank, pass)
                                          : fmt::format("search: {}", pass));
  };
  auto found = run_on_ranks(dist, "search", [&] {
    return search(request, progress("checking"), progress("simulating"));
  });
  if (dist.rank != 0) return std::nullopt;
  return found;
}

// A ranking entry's layout in words: "tp2 adp4 ep8 x1" (x: instances), or
// each role's with its nodes: "P 4n tp1 adp32 ep32 x1 | D 9n tp1 adp72 ep72 x1".
std::string layout_words(const OrderedJson& e) {
  auto shape = [](const OrderedJson& i) {
    return fmt::format("tp{} adp{} ep{} x{}", i["tp"].get<int>(), i["attention_dp"].get<int>(),
                       i["ep"].get<int>(), i["instances"].get<int>());
  };
  const OrderedJson& d = e["disaggregation"];
  if (d.is_null()) return shape(e);
  return fmt::format("P {}n {} | D {}n {}", d["prefill"]["nodes"].get<int>(), shape(d["prefill"]),
                     d["decode"]["nodes"].get<int>(), shape(d["decode"]));
}

// The load in words for the table's first line.
std::string load_words(const explore::InferenceSearchRequest& r) {
  std::string load = r.concurrency > 0 ? fmt::format("closed loop of {} in flight", r.concurrency)
                                       : fmt::format("Poisson {:g} requests/s", r.rate_per_s);
  std::string slo = fmt::format("TPOT <= {:g} ms", r.slo_tpot_ms);
  if (r.slo_ttft_ms > 0) slo += fmt::format(", TTFT <= {:g} ms", r.slo_ttft_ms);
  auto tokens = [](int64_t low, int64_t high) {
    return low == high ? fmt::format("{}", low) : fmt::format("{}-{}", low, high);
  };
  return fmt::format("{} requests, {}, {} in / {} out tokens; SLO {}", r.requests, load,
                     tokens(r.input_tokens, r.input_tokens_upper()),
                     tokens(r.output_tokens, r.output_tokens_upper()), slo);
}

int inference_search(const SearchArgs& a, const po::variables_map& vm) {
  const explore::InferenceSearchRequest& r = a.inference;
  const auto found = search_on_ranks(r, explore::search_inference_layouts);
  if (!found) return 0;  // another rank than 0: rank 0 shows the ranking
  const OrderedJson result = inference_search_json(r, a.cluster, *found);
  if (vm.count("output")) {
    const std::string path = vm["output"].as<std::string>();
    write_file_atomic(path, render_json(result));
    write_file_atomic(path + ".csv", inference_ranking_csv(result));
  }
  if (vm.count("json")) {
    std::cout << render_json(result);
    return 0;
  }
  std::cout << fmt::format(
      "{} serving on {} GPUs of {} ({}): {} layouts, {} simulated, rejected:", r.model, r.gpus,
      a.cluster, load_words(r), result["enumerated"].get<int>(), result["simulated"].get<size_t>());
  for (const auto& [k, v] : result["rejected"].items())
    std::cout << " " << k << "=" << v.get<int>();
  size_t width = std::string("layout").size();
  int shown = 0;
  for (const auto& e : result["ranking"]) {
    if (shown++ >= a.top) break;
    width = std::max(width, layout_words(e).size());
  }
  std::cout << fmt::format("\n{:>4}  {:<{}} {:>4} {:>4} {:>5} {:>12} {:>14} {:>12} {:>12} {:>7}\n",
                           "rank", "layout", width, "red", "tbo", "mbs", "goodput/GPU",
                           "out tok/s/GPU", "p99 TPOT ms", "p99 TTFT ms", "SLO met");
  shown = 0;
  for (const auto& e : result["ranking"]) {
    if (shown++ >= a.top) break;
    std::cout << fmt::format(
        "{:>4}  {:<{}} {:>4} {:>4} {:>5} {:>12.4g} {:>14.1f} {:>12.2f} {:>12.1f} {:>6.1f}%\n",
        e["rank"].get<int>(), layout_words(e), width, e["redundant_experts"].get<int>(),
        e["two_batch_overlap"].get<bool>() ? "on" : "off", e["max_batch_size"].get<int>(),
        e["goodput_requests_per_s_per_gpu"].get<double>(),
        e["output_tokens_per_s_per_gpu"].get<double>(), 1e3 * e["tpot_p99_s"].get<double>(),
        1e3 * e["ttft_p99_s"].get<double>(), 100 * e["slo_attainment"].get<double>());
  }
  for (const auto& w : result["warnings"]) std::cout << "warning: " << w.get<std::string>() << "\n";
  std::cout << "layout: tp, attention_dp (adp), ep, x instances; P / D: a disaggregated "
               "layout's prefill and decode roles on their nodes (n)\n"
               "red: redundant experts (EPLB replicas); tbo: two-batch overlap; mbs: "
               "max_batch_size; goodput/GPU: requests/s meeting the SLO per GPU\n";
  return 0;
}

}  // namespace

int search_main(const Args& args) {
  po::variables_map vm;
  bool help = false;
  const SearchArgs a = parse_request(args, vm, help, false);
  if (help) return 0;
  if (a.inference_mode) return inference_search(a, vm);
  const explore::SearchRequest& r = a.request;
  const auto found = search_on_ranks(r, explore::search_strategies);
  if (!found) return 0;  // another rank than 0: rank 0 shows the ranking
  const OrderedJson result = search_json(r, a.cluster, *found);
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
      "\n{:>4} {:>4} {:>3} {:>3} {:>3} {:>3} {:>4} {:>4} {:>4} {:>13} {:>5} {:>12} {:>6} "
      "{:>10}  {}\n",
      "rank", "dp", "tp", "cp", "pp", "vpp", "ep", "etp", "mbs", "recompute", "zero", "tok/s/GPU",
      "MFU", "free GiB", "bottleneck");
  int shown = 0;
  for (const auto& e : result["ranking"]) {
    if (shown++ >= a.top) break;
    std::cout << fmt::format(
        "{:>4} {:>4} {:>3} {:>3} {:>3} {:>3} {:>4} {:>4} {:>4} {:>13} {:>5} {:>12.1f} "
        "{:>5.1f}% {:>10.1f}  {}\n",
        e["rank"].get<int>(), e["dp"].get<int>(), e["tp"].get<int>(), e["cp"].get<int>(),
        e["pp"].get<int>(), e["virtual_stages"].get<int>(), e["ep"].get<int>(), e["etp"].get<int>(),
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
