// `moesim search`: every valid (dp, tp, pp, ep, etp, micro-batch, recompute,
// ZeRO) combination for a model on a cluster, pruned by memory before
// simulating, ranked by simulated tokens/s per GPU.
//
// To keep hundreds of points affordable each candidate is simulated with
// m' = pp + 1 micro-batches per replica and extrapolated to the real count m
// with the 1F1B shape T = (m + pp - 1) t_mb + tail, where the tail (optimizer
// and exposed data-parallel communication) comes from the simulated
// breakdown and t_mb from (T' - tail) / (m' + pp - 1). Points whose real count
// is that small are simulated exactly.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "sim/app/commands.h"
#include "sim/app/explore/point_runner.h"
#include "sim/app/scenario_runner.h"
#include "sim/core/file_io.h"
#include "workloads/model_config.h"

namespace moesim::cli {
namespace {

struct SearchRequest {
  std::string model, cluster;
  int gpus = 0;
  int64_t global_batch = 0, seq = 4096;
  int top = 10, jobs = 2;
  Json cluster_value;
};

struct Candidate {
  Json scenario;
  OrderedJson parallel;
  double tokens_per_s_per_gpu = 0, mfu = 0, step_time_s = 0, headroom_bytes = 0;
  std::string bottleneck;
  bool simulated = false;
};

std::vector<int> divisors(int n) {
  std::vector<int> d;
  for (int i = 1; i <= n; ++i) {
    if (n % i == 0) d.push_back(i);
  }
  return d;
}

Json scenario_for(const SearchRequest& r, int gpus_per_node, int dp, int tp, int pp, int ep,
                  int etp, int mbs, const std::string& recompute, int zero, int64_t batch) {
  Json cluster = r.cluster_value.is_string() ? Json{{"preset", r.cluster_value}} : r.cluster_value;
  cluster["nodes"] = r.gpus / gpus_per_node;
  return Json{{"model", r.model},
              {"cluster", cluster},
              {"parallel",
               {{"dp", dp},
                {"tp", tp},
                {"pp", pp},
                {"ep", ep},
                {"etp", etp},
                {"sequence_parallel", tp > 1},
                {"zero_stage", zero},
                {"micro_batch_size", mbs},
                {"recompute", recompute},
                {"a2a_algo", "hierarchical"}}},
              {"workload", {{"seq_len", r.seq}, {"global_batch", batch}}},
              {"routing", {{"generator", "zipf:0.5"}, {"seed", 1}}},
              {"gating", {{"capacity_factor", "dropless"}}},
              {"options", {{"routing_samples", 1}, {"max_routings_per_step", 1 << 20}}}};
}

OrderedJson search(const SearchRequest& r, bool quiet) {
  const auto model = workloads::resolve_model(Json(r.model), "--model");
  const int gpus_per_node = hw::resolve_cluster(r.cluster_value, "--cluster").node.gpus_per_node;
  if (r.gpus % gpus_per_node != 0) {
    throw Error(
        fmt::format("--gpus: {} is not a multiple of the node size {}", r.gpus, gpus_per_node));
  }
  std::vector<Candidate> candidates;
  std::map<std::string, int> rejected;
  const char* recomputes[] = {"none", "selective", "full"};
  int enumerated = 0;
  for (int tp : divisors(gpus_per_node)) {
    for (int pp : divisors(r.gpus / tp)) {
      if (pp > model.layers) continue;
      const int dp = r.gpus / (tp * pp);
      for (int ep : divisors(std::max(1, model.routed_experts))) {
        const std::vector<int> etps = tp == 1 ? std::vector<int>{1} : std::vector<int>{1, tp};
        for (int etp : etps) {
          for (int mbs : {1, 2}) {
            for (const char* rc : recomputes) {
              for (int zero : {1, 3}) {
                ++enumerated;
                Candidate c;
                c.scenario = scenario_for(r, gpus_per_node, dp, tp, pp, ep, etp, mbs, rc, zero,
                                          r.global_batch);
                c.parallel =
                    OrderedJson{{"dp", dp},        {"tp", tp},          {"pp", pp},
                                {"ep", ep},        {"etp", etp},        {"micro_batch_size", mbs},
                                {"recompute", rc}, {"zero_stage", zero}};
                candidates.push_back(std::move(c));
              }
            }
          }
        }
      }
    }
  }
  // Validity and memory first (cheap), then simulate the survivors.
  std::vector<size_t> valid;
  std::mutex mu;
  run_points(candidates.size(), r.jobs, quiet ? "" : "search: checking", [&](size_t i) {
    const ScenarioCheck check = check_scenario(candidates[i].scenario);
    std::lock_guard<std::mutex> lock(mu);
    if (!check.valid) {
      ++rejected[check.reason_code];
      return;
    }
    candidates[i].headroom_bytes = check.memory_capacity_bytes - check.peak_memory_bytes;
    valid.push_back(i);
  });
  std::sort(valid.begin(), valid.end());
  run_points(valid.size(), r.jobs, quiet ? "" : "search: simulating", [&](size_t k) {
    Candidate& c = candidates[valid[k]];
    const int dp = c.parallel["dp"], pp = c.parallel["pp"], mbs = c.parallel["micro_batch_size"];
    const int64_t m = r.global_batch / (static_cast<int64_t>(dp) * mbs);
    const int64_t m2 = std::max<int64_t>(2, pp + 1);
    OrderedJson rep;
    if (m <= m2) {
      rep = run_scenario_report(c.scenario);
      c.step_time_s = rep["step_time_s"].get<double>();
    } else {
      Json s2 = c.scenario;
      s2["workload"]["global_batch"] = m2 * dp * mbs;
      rep = run_scenario_report(s2);
      const double t2 = rep["step_time_s"].get<double>();
      const double tail = rep["breakdown"]["optimizer_s"].get<double>() +
                          rep["breakdown"]["dp_comm_s"].get<double>();
      const double per_mb = (t2 - tail) / static_cast<double>(m2 + pp - 1);
      c.step_time_s = static_cast<double>(m + pp - 1) * per_mb + tail;
    }
    const double tokens = static_cast<double>(r.global_batch) * r.seq;
    c.tokens_per_s_per_gpu = tokens / c.step_time_s / r.gpus;
    // MFU scales inversely with step time at fixed model FLOPs per token.
    c.mfu = rep["mfu"].get<double>() * rep["step_time_s"].get<double>() /
            (c.step_time_s * rep["tokens_per_step"].get<double>() / tokens);
    c.bottleneck = rep["bottleneck"].get<std::string>();
    c.simulated = true;
  });
  std::vector<const Candidate*> ranked;
  for (size_t i : valid) ranked.push_back(&candidates[i]);
  std::stable_sort(ranked.begin(), ranked.end(), [](const Candidate* a, const Candidate* b) {
    return a->tokens_per_s_per_gpu > b->tokens_per_s_per_gpu;
  });
  OrderedJson out;
  out["model"] = r.model;
  out["cluster"] = r.cluster;
  out["gpus"] = r.gpus;
  out["global_batch"] = r.global_batch;
  out["seq_len"] = r.seq;
  out["enumerated"] = enumerated;
  out["simulated"] = valid.size();
  OrderedJson rej = OrderedJson::object();
  for (const auto& [k, v] : rejected) rej[k] = v;
  out["rejected"] = rej;
  OrderedJson ranking = OrderedJson::array();
  int rank = 1;
  for (const Candidate* c : ranked) {
    OrderedJson e = c->parallel;
    e["rank"] = rank++;
    e["step_time_s"] = c->step_time_s;
    e["tokens_per_s_per_gpu"] = c->tokens_per_s_per_gpu;
    e["mfu"] = c->mfu;
    e["memory_headroom_bytes"] = c->headroom_bytes;
    e["bottleneck"] = c->bottleneck;
    ranking.push_back(e);
  }
  out["ranking"] = ranking;
  return out;
}

std::string ranking_csv(const OrderedJson& result) {
  std::string s =
      "rank,dp,tp,pp,ep,etp,micro_batch_size,recompute,zero_stage,step_time_s,"
      "tokens_per_s_per_gpu,mfu,memory_headroom_bytes,bottleneck\n";
  for (const auto& e : result["ranking"]) {
    s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", e["rank"].get<int>(),
                     e["dp"].get<int>(), e["tp"].get<int>(), e["pp"].get<int>(), e["ep"].get<int>(),
                     e["etp"].get<int>(), e["micro_batch_size"].get<int>(),
                     e["recompute"].get<std::string>(), e["zero_stage"].get<int>(),
                     e["step_time_s"].get<double>(), e["tokens_per_s_per_gpu"].get<double>(),
                     e["mfu"].get<double>(), e["memory_headroom_bytes"].get<double>(),
                     e["bottleneck"].get<std::string>());
  }
  return s;
}

SearchRequest parse_request(const Args& args, po::variables_map& vm, bool& help, bool bench) {
  po::options_description options(bench ? "bench search options" : "search options");
  SearchRequest r;
  std::string out, inference;
  options.add_options()("model", po::value(&r.model), "model preset")(
      "cluster", po::value(&r.cluster), "cluster preset or JSON file")(
      "gpus", po::value(&r.gpus), "GPUs to use")("global-batch", po::value(&r.global_batch),
                                                 "sequences per step")(
      "seq", po::value(&r.seq), "sequence length (default 4096)")("top", po::value(&r.top),
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
  if (help) return r;
  if (vm.count("inference")) {
    throw Error(
        "--inference: inference (prefill/decode) is not modelled yet; search covers "
        "training");
  }
  if (bench) {
    if (r.model.empty()) r.model = "mixtral-8x22b";
    if (r.cluster.empty()) r.cluster = "dgx-h100";
    if (!r.gpus) r.gpus = 256;
    if (!r.global_batch) r.global_batch = 1024;
  }
  if (r.model.empty()) throw Error("--model: required (see moesim models)");
  if (r.cluster.empty()) throw Error("--cluster: required (see moesim presets)");
  if (r.gpus < 1) throw Error("--gpus: expected a positive integer");
  if (r.global_batch < 1) throw Error("--global-batch: expected a positive integer");
  if (r.seq < 1) throw Error("--seq: expected a positive integer");
  if (r.jobs < 1 || r.jobs > 256) throw Error("--jobs: expected an integer in [1, 256]");
  r.cluster_value = cluster_argument(r.cluster);
  return r;
}

}  // namespace

int search_main(const Args& args) {
  po::variables_map vm;
  bool help = false;
  const SearchRequest r = parse_request(args, vm, help, false);
  if (help) return 0;
  const OrderedJson result = search(r, false);
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
                           r.gpus, r.cluster, result["enumerated"].get<int>(),
                           result["simulated"].get<size_t>());
  for (const auto& [k, v] : result["rejected"].items())
    std::cout << " " << k << "=" << v.get<int>();
  std::cout << fmt::format(
      "\n{:>4} {:>4} {:>3} {:>3} {:>4} {:>4} {:>4} {:>10} {:>5} {:>12} {:>6} "
      "{:>10}  {}\n",
      "rank", "dp", "tp", "pp", "ep", "etp", "mbs", "recompute", "zero", "tok/s/GPU", "MFU",
      "free GiB", "bottleneck");
  int shown = 0;
  for (const auto& e : result["ranking"]) {
    if (shown++ >= r.top) break;
    std::cout << fmt::format(
        "{:>4} {:>4} {:>3} {:>3} {:>4} {:>4} {:>4} {:>10} {:>5} {:>12.1f} "
        "{:>5.1f}% {:>10.1f}  {}\n",
        e["rank"].get<int>(), e["dp"].get<int>(), e["tp"].get<int>(), e["pp"].get<int>(),
        e["ep"].get<int>(), e["etp"].get<int>(), e["micro_batch_size"].get<int>(),
        e["recompute"].get<std::string>(), e["zero_stage"].get<int>(),
        e["tokens_per_s_per_gpu"].get<double>(), 100 * e["mfu"].get<double>(),
        e["memory_headroom_bytes"].get<double>() / (1ull << 30),
        e["bottleneck"].get<std::string>());
  }
  return 0;
}

int bench_search_main(const Args& args) {
  po::variables_map vm;
  bool help = false;
  const SearchRequest r = parse_request(args, vm, help, true);
  if (help) return 0;
  const auto start = std::chrono::steady_clock::now();
  const OrderedJson result = search(r, true);
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
