// `moesim collective`: one collective on a cluster, timed by the flow-level
// network (and the closed-form estimate alongside), with NCCL-tests'
// algorithm and bus bandwidths.

#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <span>
#include <sstream>

#include <fmt/format.h>

#include "hwmodels/cluster.h"
#include "reports/json_output.h"
#include "sim/app/commands.h"
#include "sim/collectives/analytic.h"
#include "sim/collectives/flow.h"
#include "sim/engine/engine.h"

namespace moesim::cli {
namespace {

class Done : public EventHandler {
 public:
  void on_event(uint64_t) override { fired = true; }
  bool fired = false;
};

std::vector<int> parse_ranks(const std::string& spec, int gpus) {
  std::vector<int> out;
  if (spec.find(',') == std::string::npos) {
    char* end = nullptr;
    const long n = std::strtol(spec.c_str(), &end, 10);
    if (end == spec.c_str() || *end || n < 1 || n > gpus) {
      throw Error(
          fmt::format("--ranks: expected a count in [1, {}] or a comma-separated list, "
                      "got '{}'",
                      gpus, spec));
    }
    for (int r = 0; r < n; ++r) out.push_back(r);
    return out;
  }
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const long r = std::strtol(item.c_str(), &end, 10);
    if (end == item.c_str() || *end) throw Error(fmt::format("--ranks: '{}' is not a rank", item));
    if (r < 0 || r >= gpus) {
      throw Error(fmt::format("--ranks: rank {} is outside the cluster's {} GPUs", r, gpus));
    }
    if (std::find(out.begin(), out.end(), r) != out.end()) {
      throw Error(fmt::format("--ranks: rank {} listed twice", r));
    }
    out.push_back(static_cast<int>(r));
  }
  return out;
}

// "one node" or "N nodes": where `ranks` sit.
std::string ranks_span(const hw::ClusterSpec& cluster, std::span<const int> ranks) {
  std::set<int> nodes;
  for (int r : ranks) nodes.insert(cluster.node_of(r));
  return nodes.size() == 1 ? "one node" : fmt::format("{} nodes", nodes.size());
}

// Sets `request`'s algorithm from --algo (empty: the default) and returns the
// name of the one that runs; one that NCCL or DeepEP does not offer for this
// op and group is an error naming why.
std::string set_algorithm(const hw::ClusterSpec& cluster, const std::string& op,
                          const std::string& algo, coll::Collective& request) {
  if (request.op == coll::CollectiveOp::kAllToAllV) {
    const auto a = coll::algorithm_from_name(algo.empty() ? "hierarchical" : algo);
    if (!a) throw Error("--algo: all_to_all takes direct, hierarchical or low_latency");
    request.algorithm = *a;
    return std::string(coll::algorithm_name(*a));
  }
  if (request.op == coll::CollectiveOp::kSendRecv) {
    if (!algo.empty() && algo != "ring") throw Error("--algo: send_recv takes ring");
    return "p2p";
  }
  const auto r = coll::reduce_algorithm_from_name(algo.empty() ? "auto" : algo);
  if (!r) throw Error("--algo: " + op + " takes ring, tree, nvls or auto");
  if (!coll::reduce_algorithm_offered(cluster, request, *r)) {
    throw Error(*r == coll::ReduceAlgorithm::kNvls
                    ? fmt::format("--algo nvls: NCCL runs NVLS inside one node with NVLink SHARP "
                                  "({} node.nvls: {}; these ranks span {})",
                                  cluster.name, cluster.node.nvls ? "true" : "false",
                                  ranks_span(cluster, request.ranks))
                    : fmt::format("--algo tree: NCCL runs tree for all_reduce across nodes "
                                  "(this is {} over {})",
                                  op, ranks_span(cluster, request.ranks)));
  }
  request.reduce = *r;
  return std::string(coll::reduce_algorithm_name(coll::resolve_reduce_algorithm(cluster, request)));
}

}  // namespace

int collective_main(const Args& args) {
  po::options_description options("collective options");
  std::string cluster_arg, op, ranks_arg, algo, counts_path;
  int nodes = 0;
  double bytes = -1;
  options.add_options()("cluster", po::value(&cluster_arg), "cluster preset or JSON file")(
      "nodes", po::value(&nodes), "number of nodes (overrides the preset)")(
      "op", po::value(&op), "all_to_all | all_reduce | reduce_scatter | all_gather | send_recv")(
      "bytes", po::value(&bytes),
      "bytes per rank (NCCL-tests convention: the full buffer; all_to_all: the rank's whole "
      "send buffer)")("ranks", po::value(&ranks_arg), "rank count (0..N-1) or list 0,8,16")(
      "algo", po::value(&algo),
      "all_to_all: direct | hierarchical (default) | low_latency; all_reduce, reduce_scatter, "
      "all_gather: auto (default: as NCCL's tuner picks) | ring | tree | nvls")(
      "counts", po::value(&counts_path), "all_to_all: JSON n x n matrix of bytes (row = sender)")(
      "json", "print one JSON object");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim collective --cluster <preset|file.json> [--nodes N] --op OP --bytes N "
             "--ranks <count|list> [--algo ALGO] [--counts m.json] [--json]")) {
    return 0;
  }
  if (cluster_arg.empty()) throw Error("--cluster: required (see moesim presets)");
  if (op.empty()) throw Error("--op: required");
  const hw::ClusterSpec cluster =
      hw::resolve_cluster(cluster_argument(cluster_arg), "--cluster",
                          vm.count("nodes") ? std::optional<int>(nodes) : std::nullopt);
  const std::vector<int> ranks = parse_ranks(
      ranks_arg.empty() ? std::to_string(cluster.gpu_count()) : ranks_arg, cluster.gpu_count());
  const int n = static_cast<int>(ranks.size());
  std::vector<double> matrix;
  if (!counts_path.empty()) {
    if (op != "all_to_all") throw Error("--counts: only for --op all_to_all");
    const Json m = load_json_file(counts_path);
    if (!m.is_array() || static_cast<int>(m.size()) != n) {
      throw Error(fmt::format("--counts: expected a {}x{} matrix (one row per rank), got {}", n, n,
                              m.is_array() ? fmt::format("{} rows", m.size()) : describe_json(m)));
    }
    for (int i = 0; i < n; ++i) {
      if (!m[i].is_array() || static_cast<int>(m[i].size()) != n) {
        throw Error(fmt::format("--counts[{}]: expected {} entries", i, n));
      }
      for (int j = 0; j < n; ++j) {
        matrix.push_back(expect_number(m[i][j], fmt::format("--counts[{}][{}]", i, j), 0, 1e15));
      }
    }
    bytes = 0;
    for (int j = 0; j < n; ++j)
      bytes = std::max(bytes, [&] {
        double s = 0;
        for (int k = 0; k < n; ++k) s += matrix[j * n + k];
        return s;
      }());
  } else if (!(bytes >= 0) || bytes > 1e15) {
    // At most a petabyte: the time of any collective stays within the
    // engine's clock (int64 picoseconds, about 106 days).
    throw Error("--bytes: expected a non-negative number of bytes, at most 1e15");
  }
  coll::Collective request;
  request.ranks = ranks;
  request.bytes = bytes;
  if (op == "all_to_all") {
    request.op = coll::CollectiveOp::kAllToAllV;
    if (matrix.empty()) matrix.assign(static_cast<size_t>(n) * n, bytes / n);
    request.matrix_bytes = matrix;
  } else {
    const std::map<std::string, coll::CollectiveOp> ops = {
        {"all_reduce", coll::CollectiveOp::kAllReduce},
        {"reduce_scatter", coll::CollectiveOp::kReduceScatter},
        {"all_gather", coll::CollectiveOp::kAllGather},
        {"send_recv", coll::CollectiveOp::kSendRecv}};
    const auto it = ops.find(op);
    if (it == ops.end()) {
      throw Error(
          fmt::format("--op: unknown operation '{}' (all_to_all, all_reduce, "
                      "reduce_scatter, all_gather, send_recv)",
                      op));
    }
    request.op = it->second;
    if (request.op == coll::CollectiveOp::kSendRecv && n != 2) {
      throw Error("--ranks: send_recv takes exactly two ranks (sender,receiver)");
    }
  }
  const std::string used_algo = set_algorithm(cluster, op, algo, request);
  Engine engine;
  coll::FlowCollectives flow(engine, cluster);
  Done done;
  flow.start(request, done, 0);
  engine.run();
  const double analytic = coll::collective_seconds(cluster, request);
  const double t = engine.now().seconds();
  const double algbw = t > 0 ? bytes / t / 1e9 : 0;
  OrderedJson out;
  out["op"] = op;
  out["algo"] = used_algo;
  out["cluster"] = cluster.name;
  out["nodes"] = cluster.nodes;
  out["ranks"] = n;
  out["bytes"] = bytes;
  out["time_s"] = t;
  out["algbw_gbps"] = algbw;
  out["busbw_gbps"] = algbw * coll::bus_bandwidth_factor(request.op, n);
  out["analytic_time_s"] = analytic;
  out["flows"] = flow.flows_started();
  out["events"] = engine.events_executed();
  out["bytes_sent"] = flow.bytes_sent();
  out["bytes_delivered"] = flow.bytes_delivered();
  if (vm.count("json")) {
    std::cout << render_json(out);
  } else {
    std::cout << fmt::format(
        "{} ({}) of {} bytes over {} ranks of {} x {}: {:.6g} s, algbw {:.4g} "
        "GB/s, busbw {:.4g} GB/s (closed form {:.6g} s)\n",
        op, used_algo, bytes, n, cluster.nodes, cluster.name, t, algbw,
        out["busbw_gbps"].get<double>(), analytic);
  }
  return 0;
}

}  // namespace moesim::cli
