// `moesim trace generate|stats|import`: routing traces on disk.

#include <iostream>
#include <limits>

#include <fmt/format.h>

#include "reports/json_output.h"
#include "sim/app/commands.h"
#include "sim/core/file_io.h"
#include "workloads/model_config.h"
#include "workloads/routing_generator.h"
#include "workloads/routing_stats.h"
#include "workloads/trace_file.h"
#include "workloads/trace_import.h"

namespace moesim::cli {
namespace {

int generate(const Args& args) {
  po::options_description options("trace generate options");
  std::string model_name, gen = "uniform", out;
  int64_t tokens = 0, steps = 1, ranks = 1;
  uint64_t seed = 1;
  options.add_options()("model", po::value(&model_name), "model preset (see moesim models)")(
      "tokens", po::value(&tokens), "tokens per step (routed at every MoE layer)")(
      "steps", po::value(&steps), "steps (default 1)")(
      "gen", po::value(&gen),
      "generator: uniform, zipf:S, dirichlet:A, token_id:S, drift:S:R, "
      "correlated:S:P, grouped:S:G[:V], sequence:S (each rank's tokens one sequence) "
      "(default uniform)")("seed", po::value(&seed), "seed (default 1)")(
      "ranks", po::value(&ranks), "source ranks the tokens come from, evenly (default 1)")(
      "output,o", po::value(&out), "trace file to write");
  po::positional_options_description positional;
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim trace generate --model NAME --tokens N [--steps S] [--gen zipf:1.2] "
             "[--seed 7] [--ranks R] -o t.moetrace")) {
    return 0;
  }
  if (model_name.empty()) throw Error("--model: required");
  if (out.empty()) throw Error("--output: required");
  const auto model = workloads::resolve_model(Json(model_name), "--model");
  workloads::TraceHeader h{
      model.name, model.routed_experts, model.top_k, model.moe_layer_count(), 1, 1, gen, seed};
  h.validate();  // the model fits the format
  // Limits of the format (workloads/trace_file.h), stated in the errors.
  const int64_t max_tokens = workloads::kMaxTraceBlockRoutings / h.top_k;
  if (tokens < 1 || tokens > max_tokens) {
    throw Error(
        fmt::format("--tokens: expected an integer in [1, {}] (a trace block holds at most "
                    "{} routings, tokens x top-{}), got {}",
                    max_tokens, workloads::kMaxTraceBlockRoutings, h.top_k, tokens));
  }
  if (steps < 1 || steps > workloads::kMaxTraceSteps ||
      steps * h.moe_layers > workloads::kMaxTraceBlocks) {
    throw Error(fmt::format(
        "--steps: expected an integer in [1, {}] (at most {} steps, and {} blocks of one per "
        "step and MoE layer), got {}",
        std::min<int64_t>(workloads::kMaxTraceSteps, workloads::kMaxTraceBlocks / h.moe_layers),
        workloads::kMaxTraceSteps, workloads::kMaxTraceBlocks, steps));
  }
  if (ranks < 1 || ranks > workloads::kMaxTraceRanks || ranks > tokens) {
    throw Error(fmt::format("--ranks: expected an integer in [1, min({}, tokens)], got {}",
                            workloads::kMaxTraceRanks, ranks));
  }
  h.steps = static_cast<int>(steps);
  h.ranks = static_cast<int>(ranks);
  const auto g = workloads::make_generator(gen, model, seed, "--gen");
  check_room_for(out, 1024 + static_cast<uint64_t>(h.blocks()) * h.block_bytes(tokens));
  workloads::TraceWriter w(out, h);
  std::vector<int64_t> per_rank(ranks, tokens / ranks);
  for (int64_t r = 0; r < tokens % ranks; ++r) ++per_rank[r];
  workloads::RoutingBatch batch;
  for (int s = 0; s < h.steps; ++s) {
    for (int l = 0; l < h.moe_layers; ++l) {
      g->generate(s, l, per_rank, batch);
      w.write(s, l, batch);
    }
  }
  w.finish();
  std::cout << fmt::format(
      "wrote {}: {} steps x {} MoE layers x {} tokens x top-{} = {} routings, "
      "{} bytes\n",
      out, steps, h.moe_layers, tokens, h.top_k, steps * h.moe_layers * tokens * h.top_k,
      w.bytes_written());
  return 0;
}

int stats(const Args& args) {
  po::options_description options("trace stats options");
  std::string file, cf = "1.0";
  options.add_options()("file", po::value(&file), "trace file")(
      "capacity-factor", po::value(&cf),
      "capacity factor for drop_rate, or dropless (default 1.0)")("json", "print JSON");
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim trace stats t.moetrace [--capacity-factor 1.25] [--json]")) {
    return 0;
  }
  if (file.empty()) throw Error("trace stats: missing trace file");
  double c = std::numeric_limits<double>::infinity();
  if (cf != "dropless") {
    char* end = nullptr;
    c = std::strtod(cf.c_str(), &end);
    if (end == cf.c_str() || *end || !(c > 0)) {
      throw Error("--capacity-factor: expected a positive number or 'dropless'");
    }
  }
  workloads::TraceReader r(file);
  workloads::RoutingStats st(r.header().experts, r.header().moe_layers, c);
  workloads::RoutingBatch b;
  int step, layer;
  while (r.next(step, layer, b)) st.add(layer, b);
  Json j = st.to_json();
  j["trace"] = r.header().to_json();
  if (vm.count("json")) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{}: model {}, {} experts, top-{}, {} MoE layers, {} steps\n", file,
                           r.header().model, r.header().experts, r.header().top_k,
                           r.header().moe_layers, r.header().steps);
  std::cout << fmt::format(
      "  tokens {}  routings {}  max/mean load {:.3f}  cv {:.3f}  entropy "
      "{:.3f} of {:.3f} bits  drop rate at C={} {:.4f}\n",
      j["tokens"].get<int64_t>(), j["routings"].get<int64_t>(),
      j["max_over_mean_load"].get<double>(), j["cv"].get<double>(), j["entropy_bits"].get<double>(),
      std::log2(r.header().experts), cf, j["drop_rate"].get<double>());
  return 0;
}

// JSONL import (format and checks in workloads/trace_import.h).
int import(const Args& args) {
  po::options_description options("trace import options");
  std::string in, out, model_name;
  int64_t experts = 0;
  options.add_options()("input", po::value(&in), "JSONL dump")("output,o", po::value(&out),
                                                               "trace file to write")(
      "model", po::value(&model_name), "model preset (sets the expert count and name)")(
      "experts", po::value(&experts), "expert count when no --model is given");
  po::positional_options_description positional;
  positional.add("input", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim trace import dump.jsonl -o t.moetrace [--model NAME | --experts N]")) {
    return 0;
  }
  if (in.empty() || out.empty()) throw Error("trace import: need an input file and -o output");
  if (vm.count("experts")) {
    if (!model_name.empty()) {
      throw Error("--experts: not allowed with --model (the model sets the expert count)");
    }
    if (experts < 1 || experts > workloads::kMaxTraceExperts) {
      throw Error(fmt::format("--experts: expected an integer in [1, {}], got {}",
                              workloads::kMaxTraceExperts, experts));
    }
  }
  workloads::TraceImportOptions import_options;
  workloads::MoeModelConfig model;
  if (!model_name.empty()) {
    model = workloads::resolve_model(Json(model_name), "--model");
    import_options.model = &model;
  }
  import_options.experts = static_cast<int>(experts);
  const workloads::TraceHeader h = workloads::import_jsonl_trace(in, out, import_options);
  std::cout << fmt::format(
      "imported {} batches ({} steps, {} MoE layers, top-{}, {} experts) into {}\n", h.blocks(),
      h.steps, h.moe_layers, h.top_k, h.experts, out);
  return 0;
}

}  // namespace

int trace_main(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: moesim trace generate|stats|import [options]   (--help for each)\n";
    return args.empty() ? 2 : 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "generate") return generate(rest);
  if (args[0] == "stats") return stats(rest);
  if (args[0] == "import") return import(rest);
  throw Error(fmt::format("unknown trace action '{}' (generate, stats, import)", args[0]));
}

}  // namespace moesim::cli
