// `moesim bench trace`: generate and write 10^8 token-routings of
// DeepSeek-V3 (58 MoE layers, top-8), then read them back.

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "workloads/model_config.h"
#include "workloads/routing_generator.h"
#include "workloads/trace_file.h"

namespace moesim::cli {

int bench_trace_main(const Args& args) {
  po::options_description options("bench trace options");
  double routings = 1e8;
  std::string gen = "zipf:1.2", path = "/tmp/moesim-bench.moetrace";
  options.add_options()("routings", po::value(&routings), "token routings (default 1e8)")(
      "gen", po::value(&gen), "generator (default zipf:1.2)")(
      "path", po::value(&path), "scratch file (removed afterwards)")("json", "print JSON");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse(args, options, positional, vm, "moesim bench trace [--routings N] --json")) return 0;
  if (!(routings >= 1e3)) throw Error("--routings: expected at least 1000");
  const auto model = workloads::resolve_model(Json("deepseek-v3"), "model");
  const int layers = model.moe_layer_count();
  const int64_t tokens = static_cast<int64_t>(routings / (layers * model.top_k));
  const auto g = workloads::make_generator(gen, model, 7, "--gen");
  workloads::TraceHeader h{model.name, model.routed_experts, model.top_k, layers, 1, 1, gen, 7};
  const std::vector<int64_t> per_rank{tokens};
  workloads::RoutingBatch b;
  auto t0 = std::chrono::steady_clock::now();
  double gen_s = 0;
  uint64_t bytes;
  {
    workloads::TraceWriter w(path, h);
    for (int l = 0; l < layers; ++l) {
      const auto g0 = std::chrono::steady_clock::now();
      g->generate(0, l, per_rank, b);
      gen_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - g0).count();
      w.write(0, l, b);
    }
    w.finish();
    bytes = w.bytes_written();
  }
  const double write_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t0 = std::chrono::steady_clock::now();
  int64_t read = 0;
  {
    workloads::TraceReader r(path);
    int s, l;
    while (r.next(s, l, b)) read += b.tokens * b.top_k;
  }
  const double read_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::remove(path.c_str());
  const double total = static_cast<double>(tokens) * layers * model.top_k;
  OrderedJson out;
  out["benchmark"] = "trace";
  out["model"] = model.name;
  out["routings"] = total;
  out["file_bytes"] = bytes;
  out["generate_seconds"] = gen_s;
  out["generate_routings_per_second"] = total / gen_s;
  out["generate_and_write_seconds"] = write_s;
  out["generate_and_write_routings_per_second"] = total / write_s;
  out["read_seconds"] = read_s;
  out["read_routings_per_second"] = read / read_s;
  out["read_bytes_per_second"] = bytes / read_s;
  out["peak_rss_bytes"] = peak_rss_bytes();
  std::cout << render_json(out);
  return read == static_cast<int64_t>(total) ? 0 : 1;
}

}  // namespace moesim::cli
