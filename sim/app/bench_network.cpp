// `moesim bench network`: a uniform all-to-allv across a large cluster on the
// flow-level network (2,048 GPUs = 256 DGX-H100 nodes by default).

#include <chrono>
#include <iostream>

#include "hwmodels/cluster.h"
#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "sim/collectives/flow.h"
#include "sim/engine/engine.h"

namespace moesim::cli {
namespace {
class Done : public EventHandler {
 public:
  void on_event(uint64_t) override {}
};
}  // namespace

int bench_network_main(const Args& args) {
  po::options_description options("bench network options");
  int gpus = 2048;
  double per_gpu = 4194304;
  std::string preset = "dgx-h100", algo = "hierarchical";
  options.add_options()("gpus", po::value(&gpus), "GPUs (a multiple of 8; default 2048)")(
      "bytes-per-gpu", po::value(&per_gpu), "bytes each GPU sends in total (default 4 MiB)")(
      "cluster", po::value(&preset), "cluster preset (default dgx-h100)")(
      "algo", po::value(&algo), "direct | hierarchical (default)")("json", "print JSON");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim bench network [--gpus 2048] [--bytes-per-gpu 4194304] --json")) {
    return 0;
  }
  hw::ClusterSpec c = hw::resolve_cluster(Json(preset), "--cluster");
  if (gpus < 2 || gpus % c.node.gpus_per_node != 0) {
    throw Error("--gpus: expected a multiple of the node size");
  }
  // 1e15 bytes (a petabyte) at the slowest link still fits the engine's
  // clock (int64 picoseconds: about 106 days).
  if (!(per_gpu > 0 && per_gpu <= 1e15)) {
    throw Error("--bytes-per-gpu: expected a positive number of bytes, at most 1e15");
  }
  c.nodes = gpus / c.node.gpus_per_node;
  const auto start = std::chrono::steady_clock::now();
  std::vector<int> ranks(gpus);
  for (int i = 0; i < gpus; ++i) ranks[i] = i;
  std::vector<double> matrix(static_cast<size_t>(gpus) * gpus, per_gpu / gpus);
  const auto algorithm = coll::algorithm_from_name(algo);
  if (!algorithm) throw Error("--algo: expected direct or hierarchical");
  coll::Collective request;
  request.op = coll::CollectiveOp::kAllToAllV;
  request.ranks = ranks;
  request.matrix_bytes = matrix;
  request.algorithm = *algorithm;
  Engine engine;
  coll::FlowCollectives flow(engine, c);
  Done done;
  flow.start(request, done, 0);
  engine.run();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  OrderedJson out;
  out["benchmark"] = "network";
  out["gpus"] = gpus;
  out["bytes_per_gpu"] = per_gpu;
  out["algo"] = algo;
  out["wall_seconds"] = wall;
  out["simulated_time_s"] = engine.now().seconds();
  out["flows"] = flow.flows_started();
  out["events"] = engine.events_executed();
  out["events_per_second"] = engine.events_executed() / wall;
  out["flows_per_second"] = flow.flows_started() / wall;
  out["bytes_sent"] = flow.bytes_sent();
  out["bytes_delivered"] = flow.bytes_delivered();
  std::cout << render_json(out);
  return 0;
}

}  // namespace moesim::cli
