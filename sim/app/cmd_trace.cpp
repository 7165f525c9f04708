// `moesim trace generate|stats|import`: routing traces on disk.

#include <fstream>
#include <iostream>
#include <limits>

#include <fmt/format.h>

#include "reports/json_output.h"
#include "sim/app/commands.h"
#include "workloads/model_config.h"
#include "workloads/routing_generator.h"
#include "workloads/routing_stats.h"
#include "workloads/trace_file.h"

namespace moesim::cli {
namespace {

int generate(const Args& args) {
  po::options_description options("trace generate options");
  std::string model_name, gen = "uniform", out;
  int64_t tokens = 0;
  int steps = 1, ranks = 1;
  uint64_t seed = 1;
  options.add_options()("model", po::value(&model_name), "model preset (see moesim models)")(
      "tokens", po::value(&tokens), "tokens per step (routed at every MoE layer)")(
      "steps", po::value(&steps), "steps (default 1)")(
      "gen", po::value(&gen),
      "generator: uniform, zipf:S, dirichlet:A, token_id:S, drift:S:R, "
      "correlated:S:P (default uniform)")("seed", po::value(&seed), "seed (default 1)")(
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
  if (tokens < 1) throw Error("--tokens: expected a positive integer");
  if (steps < 1) throw Error("--steps: expected a positive integer");
  if (ranks < 1 || ranks > 65535 || ranks > tokens) {
    throw Error("--ranks: expected an integer in [1, min(65535, tokens)]");
  }
  const auto model = workloads::resolve_model(Json(model_name), "--model");
  const auto g = workloads::make_generator(gen, model, seed, "--gen");
  workloads::TraceHeader h{
      model.name, model.routed_experts, model.top_k, model.moe_layer_count(), steps, ranks, gen,
      seed};
  workloads::TraceWriter w(out, h);
  std::vector<int64_t> per_rank(ranks, tokens / ranks);
  for (int64_t r = 0; r < tokens % ranks; ++r) ++per_rank[r];
  workloads::RoutingBatch batch;
  for (int s = 0; s < steps; ++s) {
    for (int l = 0; l < h.moe_layers; ++l) {
      g->generate(s, l, per_rank, batch);
      w.write(s, l, batch);
    }
  }
  w.finish();
  std::cout << fmt::format(
      "wrote {}: {} steps x {} MoE layers x {} tokens x top-{} = {} routings, "
      "{} bytes\n",
      out, steps, h.moe_layers, tokens, h.top_k,
      static_cast<int64_t>(steps) * h.moe_layers * tokens * h.top_k, w.bytes_written());
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

// JSONL import: one line per (step, layer) batch, as dumped by the PyTorch
// hook in the README:
//   {"step": 0, "layer": 3, "experts": [[5, 1], ...], "weights": [[0.7, 0.3], ...],
//    "source_rank": [0, ...]}   (weights and source_rank optional)
int import(const Args& args) {
  po::options_description options("trace import options");
  std::string in, out, model_name;
  int experts = 0;
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
  // First pass: shapes.
  struct Batch {
    int step, layer;
    workloads::RoutingBatch b;
  };
  std::vector<Batch> batches;
  std::ifstream f(in);
  if (!f) throw Error(fmt::format("{}: cannot open", in));
  std::string line;
  int64_t lineno = 0, offset = 0;
  int top_k = 0, max_expert = -1, max_layer = -1, max_step = -1, max_rank = 0;
  while (std::getline(f, line)) {
    ++lineno;
    const int64_t at = offset;
    offset += static_cast<int64_t>(line.size()) + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}: line {}", in, lineno);
    const Json j = parse_json(line, where);
    ConfigObject o(j, fmt::format("{} (byte {})", where, at));
    Batch bt;
    bt.step = static_cast<int>(o.integer("step", 0, 1 << 30));
    bt.layer = static_cast<int>(o.integer("layer", 0, 1 << 20));
    const Json& ex = o.value("experts");
    if (!ex.is_array() || ex.empty())
      throw_config_error(o.field_path("experts"), "expected a non-empty array of arrays");
    const int k = static_cast<int>(ex[0].size());
    if (top_k == 0) top_k = k;
    if (k != top_k || k < 1 || k > 64) {
      throw_config_error(o.field_path("experts"),
                         fmt::format("every token needs the same top-k ({})", top_k));
    }
    const int64_t tokens = static_cast<int64_t>(ex.size());
    bt.b.resize(tokens, k, 0);
    const Json* w = o.has("weights") ? &o.value("weights") : nullptr;
    const Json* sr = o.has("source_rank") ? &o.value("source_rank") : nullptr;
    if (w && (!w->is_array() || static_cast<int64_t>(w->size()) != tokens)) {
      throw_config_error(o.field_path("weights"), "must have one row per token");
    }
    if (sr && (!sr->is_array() || static_cast<int64_t>(sr->size()) != tokens)) {
      throw_config_error(o.field_path("source_rank"), "must have one entry per token");
    }
    for (int64_t t = 0; t < tokens; ++t) {
      const std::string tp = join_path(o.field_path("experts"), static_cast<size_t>(t));
      if (!ex[t].is_array() || static_cast<int>(ex[t].size()) != k)
        throw_config_error(tp, fmt::format("expected {} expert ids", k));
      for (int c = 0; c < k; ++c) {
        const int e = static_cast<int>(
            expect_integer(ex[t][c], join_path(tp, static_cast<size_t>(c)), 0, 65534));
        bt.b.expert[t * k + c] = e;
        max_expert = std::max(max_expert, e);
        bt.b.weight[t * k + c] =
            w ? static_cast<float>(expect_number(
                    (*w)[t][c], join_path(o.field_path("weights"), static_cast<size_t>(t)), 0, 1))
              : 1.0f / k;
      }
      bt.b.source_rank[t] =
          sr ? static_cast<int32_t>(expect_integer(
                   (*sr)[t], join_path(o.field_path("source_rank"), static_cast<size_t>(t)), 0,
                   65534))
             : 0;
      max_rank = std::max(max_rank, bt.b.source_rank[t]);
    }
    o.finish();
    max_layer = std::max(max_layer, bt.layer);
    max_step = std::max(max_step, bt.step);
    batches.push_back(std::move(bt));
  }
  if (batches.empty()) throw Error(fmt::format("{}: no routing lines", in));
  workloads::TraceHeader h;
  h.generator = "import";
  h.top_k = top_k;
  h.moe_layers = max_layer + 1;
  h.steps = max_step + 1;
  h.ranks = max_rank + 1;
  if (!model_name.empty()) {
    const auto m = workloads::resolve_model(Json(model_name), "--model");
    h.model = m.name;
    h.experts = m.routed_experts;
    if (m.top_k != top_k)
      throw Error(
          fmt::format("{}: top-k {} but model {} routes top-{}", in, top_k, m.name, m.top_k));
  } else {
    h.model = "imported";
    h.experts = experts > 0 ? experts : max_expert + 1;
  }
  if (max_expert >= h.experts) {
    throw Error(
        fmt::format("{}: expert id {} but the model has {} experts", in, max_expert, h.experts));
  }
  workloads::TraceWriter wr(out, h);
  for (auto& bt : batches) {
    bt.b.experts = h.experts;
    wr.write(bt.step, bt.layer, bt.b);
  }
  wr.finish();
  std::cout << fmt::format(
      "imported {} batches ({} steps, {} MoE layers, top-{}, {} experts) into {}\n", batches.size(),
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
