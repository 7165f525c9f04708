// Inference scenarios end to end (scenario/inference_run.h): a lone request
// costs exactly the iterations the cost model prices, Little's law and token
// and KV-block conservation hold on real loads (preemptions included), decode
// pays for the distinct experts its tokens touch, runs are deterministic,
// disaggregated requests move their cache, and bad input is one line naming
// its field (or an out_of_memory run), never a crash.

#include "sim/scenario/inference_run.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "sim/collectives/analytic.h"
#include "sim/core/error.h"
#include "sim/scenario/scenario.h"
#include "sim/scenario/serving_routing.h"
#include "sim/scenario/strategy.h"
#include "workloads/routing_generator.h"

namespace moesim::scenario {
namespace {

namespace fs = std::filesystem;

// `model` on `gpus` H100s of one node (DGX H100 links, fewer GPUs).
Json serving_doc(const std::string& model, int gpus, Json parallel, Json requests) {
  return Json{
      {"model", model},
      {"cluster", {{"preset", "dgx-h100"}, {"nodes", 1}, {"node", {{"gpus_per_node", gpus}}}}},
      {"workload", {{"mode", "inference"}}},
      {"parallel", std::move(parallel)},
      {"requests", std::move(requests)}};
}

Json closed_loop(int count, int concurrency, int64_t input, int64_t output) {
  return Json{{"count", count},
              {"arrival", "closed"},
              {"concurrency", concurrency},
              {"input_tokens", input},
              {"output_tokens", output}};
}

Json load_example(const std::string& name) {
  std::ifstream in(fs::path(MOESIM_SOURCE_DIR) / "examples" / name);
  REQUIRE(in.good());
  return Json::parse(in);
}

int64_t requested_output(const InferenceRun& run) {
  int64_t n = 0;
  for (const workloads::Request& r : run.scenario.requests.requests) n += r.output_tokens;
  return n;
}

// Every request finished with the tokens it asked for, and the metrics count
// exactly those.
void check_tokens_delivered(const InferenceRun& run) {
  const auto& asked = run.scenario.requests.requests;
  REQUIRE(run.result.requests.size() == asked.size());
  for (size_t i = 0; i < asked.size(); ++i) {
    INFO("request " << i);
    REQUIRE(run.result.requests[i].finished());
    CHECK(run.result.requests[i].generated == asked[i].output_tokens);
  }
  CHECK(run.metrics->completed == static_cast<int64_t>(asked.size()));
  CHECK(run.metrics->output_tokens == requested_output(run));
}

// The message of the moesim::Error `doc` is rejected with ("" if accepted).
std::string error_of(const Json& doc) {
  try {
    run_inference(doc);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The code of the InvalidStrategy `doc` is rejected with ("" if none).
std::string rejection(const Json& doc) {
  try {
    run_inference(doc);
  } catch (const InvalidStrategy& e) {
    return e.code();
  } catch (const Error&) {
  }
  return "";
}

TEST_CASE("a lone request's TTFT is its prefill iteration and its TPOT one decode iteration",
          "[scenario][inference]") {
  const int64_t input = 512, output = 16;
  const InferenceRun run =
      run_inference(serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(1, 1, input, output)));
  REQUIRE(run.simulated());
  check_tokens_delivered(run);
  const exec::ServingMetrics& m = *run.metrics;
  REQUIRE(m.prefill.iterations == 1);
  REQUIRE(m.decode.iterations == output - 1);
  constexpr double kRounding = 1e-12;  // engine time is whole picoseconds
  CHECK(m.ttft.mean_s == Approx(m.prefill.seconds).margin(kRounding));
  CHECK(m.tpot.mean_s == Approx(m.decode.seconds / (output - 1)).margin(kRounding));
  CHECK(m.e2e.mean_s == Approx(m.prefill.seconds + m.decode.seconds).margin(output * kRounding));

  // The prefill iteration, priced again from the scenario's own cost model
  // and routing: the first iteration of instance 0 draws routing batch 0.
  const InferenceScenario& s = run.scenario;
  const auto compute = compute_cost_model(s.cluster.gpu, s.options.compute_calibration);
  exec::InferenceCostModel cost(
      s.shape, s.groups[0].parallel, s.dtype, s.kv_dtype, *compute,
      [&](const coll::Collective& c) { return coll::collective_seconds(s.cluster, c); }, {0},
      s.cluster.gpu.sms);
  const std::shared_ptr<const workloads::RoutingGenerator> generator =
      workloads::make_generator(s.routing.generator, s.model, s.routing.seed, "routing.generator");
  ServingRoutingPool pool(s.model, s.gating, generator, s.routing.seed, s.options.routing_samples,
                          s.options.max_routings_per_iteration);
  ServingRouting routing(pool, 0, {0});
  exec::ReplicaBatch prompt;
  prompt.prefill.push_back({input, 0});
  prompt.sampled = 1;
  const double prefill_s = cost.iteration({&prompt, 1}, routing, 0).seconds;
  CHECK(m.ttft.mean_s == Approx(prefill_s).margin(kRounding));
  // Decode j (iteration j) reads the prompt and the j - 1 tokens before it.
  double decode_s = 0;
  for (int64_t j = 1; j < output; ++j) {
    exec::ReplicaBatch step;
    step.decode_sequences = 1;
    step.decode_context_tokens = input + j - 1;
    step.sampled = 1;
    decode_s += cost.iteration({&step, 1}, routing, j).seconds;
  }
  CHECK(m.tpot.mean_s == Approx(decode_s / (output - 1)).margin(kRounding));
  CHECK(decode_s / (output - 1) < prefill_s);
  const auto& timeline = run.result.timeline;
  REQUIRE(timeline.size() == static_cast<size_t>(output));
  CHECK(timeline[0].prefill);
  for (size_t i = 1; i < timeline.size(); ++i) {
    CHECK_FALSE(timeline[i].prefill);
    CHECK(timeline[i].decode_tokens == 1);
    // Back to back: each iteration starts when the one before ends.
    CHECK(timeline[i].start_s ==
          Approx(timeline[i - 1].start_s + timeline[i - 1].cost.seconds).margin(kRounding));
    // Decode reads the KV cache: later tokens cost a little more, never less.
    if (i >= 2) CHECK(timeline[i].cost.attention_s >= timeline[i - 1].cost.attention_s);
  }
}

// Serving leaves MTP modules out (they only draft tokens for speculative
// decoding): the run is the same with or without them, and says so.
TEST_CASE("an MTP module is not served, and the run says so", "[scenario][inference]") {
  Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(4, 2, 256, 8));
  const InferenceRun plain = run_inference(doc);
  doc["model"] = {{"preset", "tiny-moe"}, {"mtp_layers", 1}};
  const InferenceRun with = run_inference(doc);
  REQUIRE(plain.simulated());
  REQUIRE(with.simulated());
  CHECK(with.metrics->decode.seconds == plain.metrics->decode.seconds);
  CHECK(with.metrics->prefill.seconds == plain.metrics->prefill.seconds);
  const auto mentions_mtp = [](const InferenceRun& r) {
    return std::any_of(r.warnings.begin(), r.warnings.end(), [](const std::string& w) {
      return w.find("model.mtp_layers = 1: the MTP modules are not served") != std::string::npos;
    });
  };
  CHECK(mentions_mtp(with));
  CHECK_FALSE(mentions_mtp(plain));
}

// A closed loop's first `concurrency` requests arrive at once, and requests
// of one output length finish together: the run says when its figures
// describe that rather than a steady state.
TEST_CASE("a closed loop that is mostly its start, or runs in waves, says so",
          "[scenario][inference]") {
  const auto warned = [](const Json& doc, const std::string& text) {
    const InferenceRun run = run_inference(doc);
    REQUIRE(run.simulated());
    return std::any_of(run.warnings.begin(), run.warnings.end(),
                       [&](const std::string& w) { return w.find(text) != std::string::npos; });
  };
  const std::string burst = "is under twice requests.concurrency";
  const std::string waves = "requests.output_tokens is one length in a closed loop";
  // 8 requests, 6 at once: a burst; every output 8 tokens: waves.
  const Json short_loop = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(8, 6, 64, 8));
  CHECK(warned(short_loop, "requests.count (8) is under twice requests.concurrency (6)"));
  CHECK(warned(short_loop, waves));
  // Twice the concurrency is past the burst; outputs that vary are no waves.
  Json steady = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(12, 6, 64, 8));
  steady["requests"]["output_tokens"] = {{"dist", "uniform"}, {"min", 4}, {"max", 12}};
  CHECK_FALSE(warned(steady, burst));
  CHECK_FALSE(warned(steady, waves));
  // All requests in flight from the start end once each: nothing to replace.
  const Json one_wave = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(6, 6, 64, 8));
  CHECK(warned(one_wave, burst));
  CHECK_FALSE(warned(one_wave, waves));
  // Open loops warn of neither.
  const Json open = serving_doc("tiny-moe", 1, {{"tp", 1}},
                                {{"count", 8},
                                 {"arrival", "poisson"},
                                 {"rate_per_s", 100},
                                 {"input_tokens", 64},
                                 {"output_tokens", 8}});
  CHECK_FALSE(warned(open, burst));
  CHECK_FALSE(warned(open, waves));
  // The rule itself, with the names a caller gives it (the search's flags).
  const workloads::RequestLoad load =
      workloads::parse_request_load(closed_loop(8, 6, 64, 8), "requests");
  const std::vector<std::string> flags =
      closed_loop_warnings(load, false, {"--requests", "--concurrency", "--output-tokens"});
  REQUIRE(flags.size() == 2);
  CHECK_THAT(flags[0], Catch::StartsWith("--requests (8) is under twice --concurrency (6)"));
  CHECK_THAT(flags[1], Catch::StartsWith("--output-tokens is one length"));
  // Prefill instances alone end each request at its first token: no waves.
  CHECK(closed_loop_warnings(load, true).size() == 1);
}

TEST_CASE("a windowed model's decode reads only its window on windowed layers",
          "[scenario][inference]") {
  // tiny-moe with gpt-oss's pattern (every other layer sliding over 64
  // tokens): a lone request's decode iterations are the cost model's, with
  // each token's window keys counted, and cheaper in attention than the same
  // model without the window (a long prompt, so that reading the cache
  // outweighs the projections).
  const int64_t input = 65536, output = 8;
  Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(1, 1, input, output));
  const InferenceRun full = run_inference(doc);
  doc["model"] = {
      {"preset", "tiny-moe"},
      {"attention", {{"window", {{"kind", "sliding"}, {"tokens", 64}, {"full_every", 2}}}}}};
  const InferenceRun windowed = run_inference(doc);
  REQUIRE((full.simulated() && windowed.simulated()));
  const InferenceScenario& s = windowed.scenario;
  REQUIRE(s.shape.windowed_layer == std::vector<bool>{true, false, true, false});
  CHECK(windowed.metrics->decode.attention_s < 0.9 * full.metrics->decode.attention_s);
  const auto compute = compute_cost_model(s.cluster.gpu, s.options.compute_calibration);
  exec::InferenceCostModel cost(
      s.shape, s.groups[0].parallel, s.dtype, s.kv_dtype, *compute,
      [&](const coll::Collective& c) { return coll::collective_seconds(s.cluster, c); }, {0},
      s.cluster.gpu.sms);
  ServingRoutingPool pool(
      s.model, s.gating,
      workloads::make_generator(s.routing.generator, s.model, s.routing.seed, "routing.generator"),
      s.routing.seed, s.options.routing_samples, s.options.max_routings_per_iteration);
  ServingRouting routing(pool, 0, {0});
  exec::ReplicaBatch prompt;
  prompt.prefill.push_back({input, 0});
  prompt.sampled = 1;
  cost.iteration({&prompt, 1}, routing, 0);
  double decode_s = 0;
  for (int64_t j = 1; j < output; ++j) {
    exec::ReplicaBatch step;
    step.add_decode(s.shape, input + j - 1);
    step.sampled = 1;
    CHECK(step.decode_window_keys == 64);
    decode_s += cost.iteration({&step, 1}, routing, j).seconds;
  }
  CHECK(windowed.metrics->tpot.mean_s == Approx(decode_s / (output - 1)).margin(1e-12));
}

TEST_CASE("the Mixtral example obeys Little's law and delivers every requested token",
          "[scenario][inference]") {
  const InferenceRun run = run_inference(load_example("mixtral-8x7b-h100-tp2-poisson.json"));
  REQUIRE(run.simulated());
  check_tokens_delivered(run);
  const exec::ServingMetrics& m = *run.metrics;
  CHECK(m.mean_requests_in_system > 1);  // requests overlap: batching and queueing
  const double little = m.completed / m.duration_s * m.e2e.mean_s;
  CHECK(m.mean_requests_in_system == Approx(little).epsilon(1e-9));
  CHECK(run.result.kv_blocks_allocated == run.result.kv_blocks_freed);
  // Prompt tokens of prefill iterations are the prompts, once each (no preemption).
  REQUIRE(m.preemptions == 0);
  int64_t prompts = 0;
  for (const workloads::Request& r : run.scenario.requests.requests) prompts += r.input_tokens;
  CHECK(m.prefill.prompt_tokens + m.decode.prompt_tokens == prompts);
  CHECK(m.input_tokens == prompts);
}

// options.reserved_memory_gib that leaves `blocks` KV blocks per GPU for `doc`.
double reserve_leaving(const Json& doc, int64_t blocks) {
  Json probe = doc;
  probe["options"]["reserved_memory_gib"] = 0;
  const InferenceRun run = run_inference(probe);
  const exec::InferenceMemory& mem = run.memory.at(0).memory;
  const double block_bytes =
      run.memory[0].kv_bytes_per_token_per_gpu * run.scenario.serving.kv_block_tokens;
  const double reserved = mem.capacity_bytes - mem.used_bytes_before_kv() -
                          (static_cast<double>(blocks) + 0.5) * block_bytes;
  return reserved / (1ull << 30);
}

TEST_CASE("KV blocks are conserved and tokens delivered through preemptions of both kinds",
          "[scenario][inference][kv]") {
  // 16 requests of 256 + 256 tokens in flight (8 blocks of 64 each at the
  // end) share 40 blocks.
  Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(48, 16, 256, 256));
  doc["options"]["reserved_memory_gib"] = reserve_leaving(doc, 40);
  for (const std::string preemption : {"recompute", "swap"}) {
    INFO(preemption);
    doc["serving"]["preemption"] = preemption;
    const InferenceRun run = run_inference(doc);
    REQUIRE(run.simulated());
    CHECK(run.memory[0].memory.kv_blocks == 40);
    CHECK(run.metrics->preemptions > 0);
    CHECK(run.result.kv_blocks_allocated == run.result.kv_blocks_freed);
    CHECK(run.metrics->kv_peak_utilisation <= 1.0);
    CHECK(run.metrics->kv_peak_utilisation > 0.9);
    check_tokens_delivered(run);
    const int64_t prompts = 48 * 256;
    if (preemption == "swap") {
      CHECK(run.metrics->prefill.prompt_tokens == prompts);  // caches went to host and back
      CHECK(run.metrics->swap_fallbacks == 0);               // 4 GiB per GPU holds them all
      CHECK(run.result.swap_blocks_out == run.result.swap_blocks_in);
      CHECK(run.result.swap_blocks_out > 0);
    } else {
      CHECK(run.metrics->prefill.prompt_tokens > prompts);  // preempted prompts ran again
    }
  }
}

TEST_CASE("a full swap space recomputes its victims, and the report says so",
          "[scenario][inference][kv]") {
  // The same crowded load with a swap space smaller than one KV block: every
  // preemption recomputes, exactly as preemption "recompute" does.
  Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(48, 16, 256, 256));
  doc["options"]["reserved_memory_gib"] = reserve_leaving(doc, 40);
  doc["serving"]["preemption"] = "recompute";
  const InferenceRun recompute = run_inference(doc);
  doc["serving"]["preemption"] = "swap";
  doc["serving"]["swap_space_gib"] = 1e-9;
  const InferenceRun swap = run_inference(doc);
  REQUIRE((recompute.simulated() && swap.simulated()));
  REQUIRE(swap.metrics->preemptions > 0);
  CHECK(swap.metrics->swap_fallbacks == swap.metrics->preemptions);
  CHECK(swap.result.swap_blocks_out == 0);
  CHECK(swap.metrics->prefill.prompt_tokens == recompute.metrics->prefill.prompt_tokens);
  CHECK(swap.metrics->duration_s == recompute.metrics->duration_s);
  CHECK(std::any_of(swap.warnings.begin(), swap.warnings.end(), [](const std::string& w) {
    return w.find("swap space full") != std::string::npos &&
           w.find("serving.swap_space_gib") != std::string::npos;
  }));
  CHECK(std::none_of(recompute.warnings.begin(), recompute.warnings.end(),
                     [](const std::string& w) { return w.find("swap") != std::string::npos; }));
}

TEST_CASE("windowed layers free the blocks their window left, and blocks stay conserved",
          "[scenario][inference][kv]") {
  // The same load with every other layer sliding over 64 tokens: each
  // sequence ends holding 8 blocks on its full layers and 2 on its windowed
  // ones (5 whole blocks, against 8), so fewer preemptions; the blocks
  // freed as windows slide, on release and on preemption add up to those
  // allocated.
  Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(48, 16, 256, 256));
  doc["options"]["reserved_memory_gib"] = reserve_leaving(doc, 40);
  const InferenceRun full = run_inference(doc);
  doc["model"] = {
      {"preset", "tiny-moe"},
      {"attention", {{"window", {{"kind", "sliding"}, {"tokens", 64}, {"full_every", 2}}}}}};
  for (const std::string preemption : {"recompute", "swap"}) {
    INFO(preemption);
    doc["serving"]["preemption"] = preemption;
    const InferenceRun run = run_inference(doc);
    REQUIRE((full.simulated() && run.simulated()));
    CHECK(run.memory[0].memory.kv_blocks == 40);
    CHECK(run.result.kv_blocks_allocated == run.result.kv_blocks_freed);
    CHECK(run.metrics->kv_peak_utilisation <= 1.0);
    CHECK(run.metrics->preemptions < full.metrics->preemptions);
    check_tokens_delivered(run);
  }
}

TEST_CASE("decode expert time grows with the distinct experts its tokens touch",
          "[scenario][inference]") {
  // Qwen3-30B-A3B (128 experts, top-8) on one H100, 16 sequences decoding:
  // uniform routing touches ~80 experts per layer, zipf:8 little more than
  // the 8 hottest. Memory-bound grouped GEMMs read each touched expert once.
  Json doc = serving_doc("qwen3-30b-a3b", 1, {{"tp", 1}}, closed_loop(16, 16, 128, 64));
  doc["serving"] = {{"max_batch_size", 16}};
  doc["routing"] = {{"generator", "uniform"}, {"seed", 3}};
  const InferenceRun uniform = run_inference(doc);
  doc["routing"]["generator"] = "zipf:8";
  const InferenceRun hot = run_inference(doc);
  REQUIRE(uniform.simulated());
  REQUIRE(hot.simulated());
  const exec::PhaseTime& u = uniform.metrics->decode;
  const exec::PhaseTime& h = hot.metrics->decode;
  // The same iterations over the same tokens ...
  REQUIRE(u.iterations == h.iterations);
  REQUIRE(u.decode_tokens == h.decode_tokens);
  REQUIRE(u.iterations > 0);
  // ... cost several times more expert time when the tokens spread out.
  CHECK(u.expert_s > 3 * h.expert_s);
  CHECK(u.seconds > h.seconds);
  // Attention does not depend on routing.
  CHECK(u.attention_s == Approx(h.attention_s).epsilon(1e-12));
  CHECK(uniform.experts.max_over_mean_load < hot.experts.max_over_mean_load);
}

// Every field of a run, floating point in hex: two runs that print the same
// string computed the same bits.
std::string fingerprint(const InferenceRun& run) {
  std::ostringstream o;
  o << std::hexfloat;
  o << inference_scenario_json(run.scenario).dump() << '\n';
  const exec::ServingResult& r = run.result;
  for (const exec::RequestOutcome& q : r.requests) {
    o << q.arrival_s << ' ' << q.first_token_s << ' ' << q.finish_s << ' ' << q.input_tokens << ' '
      << q.output_tokens << ' ' << q.generated << ' ' << q.preemptions << '\n';
  }
  for (const exec::PhaseTime* p : {&r.prefill, &r.decode}) {
    o << p->iterations << ' ' << p->seconds << ' ' << p->attention_s << ' ' << p->expert_s << ' '
      << p->dispatch_s << ' ' << p->combine_s << ' ' << p->other_s << ' ' << p->gpu_seconds << ' '
      << p->prompt_tokens << ' ' << p->decode_tokens << '\n';
  }
  o << r.makespan_s << ' ' << r.requests_in_system_s << ' ' << r.gpu_idle_s << ' ' << r.preemptions
    << ' ' << r.kv_peak_utilisation << ' ' << r.kv_mean_utilisation << ' ' << r.batch_mean << ' '
    << r.batch_max << ' ' << r.kv_blocks_allocated << ' ' << r.events << ' ' << r.iterations << ' '
    << r.inter_token.count() << ' ' << r.inter_token.mean() << ' ' << r.inter_token.quantile(0.99)
    << '\n';
  for (const exec::IterationRecord& t : r.timeline) {
    o << t.instance << ' ' << t.start_s << ' ' << t.cost.seconds << ' ' << t.prompt_tokens << ' '
      << t.decode_tokens << '\n';
  }
  const exec::ServingMetrics& m = *run.metrics;
  o << m.ttft.p99_s << ' ' << m.tpot.p99_s << ' ' << m.e2e.p99_s << ' ' << m.goodput_requests_per_s
    << '\n';
  o << run.experts.tokens_routed << ' ' << run.experts.max_over_mean_load << '\n';
  for (const std::string& w : run.warnings) o << w << '\n';
  return o.str();
}

TEST_CASE("EPLB packs groups on nodes only where EP ranks are numbered node by node",
          "[scenario][inference]") {
  CHECK(eplb_nodes(std::vector<int>{0, 0, 1, 1, 2, 2}) == 3);
  // Node-limited routing's group: the most EP ranks on one node.
  CHECK(ep_ranks_per_node(std::vector<int>{0, 0, 1, 1, 2, 2}) == 2);
  CHECK(ep_ranks_per_node(std::vector<int>{0, 1, 0, 1, 1}) == 3);
  CHECK(ep_ranks_per_node(std::vector<int>{}) == 1);
  CHECK(eplb_nodes(std::vector<int>{5, 5, 5, 5}) == 1);
  CHECK(eplb_nodes(std::vector<int>{0, 1, 0, 1}) == 1);        // interleaved
  CHECK(eplb_nodes(std::vector<int>{0, 0, 0, 1, 1}) == 1);     // uneven
  CHECK(eplb_nodes(std::vector<int>{0, 0, 1, 1, 0, 0}) == 1);  // a node twice
  CHECK(eplb_nodes(std::vector<int>{}) == 1);
}

TEST_CASE("an iteration's routing batches, drawn on several threads, equal a serial loop",
          "[scenario][inference]") {
  // DeepSeek-V3 decode on 72 EP ranks (9 nodes), 256 tokens each: 147,456
  // copies per batch, enough to draw the iteration's batches in parallel.
  const InferenceScenario s =
      resolve_inference_scenario(load_example("deepseek-v3-h100-decode-ep72.json"));
  const std::shared_ptr<const workloads::RoutingGenerator> generator =
      workloads::make_generator(s.routing.generator, s.model, s.routing.seed, "routing.generator");
  const int ep = 72, samples = 4;
  std::vector<int> node(ep);
  for (int r = 0; r < ep; ++r) node[r] = r / 8;
  ServingRoutingPool pool(s.model, s.gating, generator, s.routing.seed, samples, int64_t{1} << 40);
  ServingRouting routing(pool, 0, node);
  const std::vector<int64_t> tokens(ep, 256);
  const int moe_layers = s.model.moe_layer_count();
  const int slots = s.model.routed_experts + s.gating.redundant_experts;
  for (const uint64_t iteration : {uint64_t{0}, uint64_t{5}}) {
    const std::vector<exec::RoutingSample> drawn = routing.route(iteration, tokens);
    REQUIRE(drawn.size() == static_cast<size_t>(samples));
    for (int b = 0; b < samples; ++b) {
      INFO("iteration " << iteration << ", batch " << b);
      // The serial recipe ServingRouting documents, one batch at a time.
      const uint64_t draw = iteration * samples + b;
      const int layer = static_cast<int>(draw % moe_layers);
      const uint64_t step = draw / moe_layers;
      const std::vector<double> popularity = generator->popularity(0, layer);
      const workloads::ExpertPlacement place = workloads::place_experts(
          s.model.routed_experts, ep, s.gating.redundant_experts, popularity);
      workloads::RoutingBatch batch;
      workloads::GatingOutcome outcome;
      generator->generate(static_cast<int>(step), layer, tokens, batch);
      workloads::apply_gating(
          batch, s.gating, place, popularity, 8, outcome,
          s.routing.seed ^ (step * 0x9E3779B97F4A7C15ull) ^ static_cast<uint64_t>(layer));
      const exec::RoutingSample serial = count_dispatch(batch, outcome, slots, node, 1.0);
      CHECK(drawn[b].pair_tokens == serial.pair_tokens);
      CHECK(drawn[b].rank_tokens == serial.rank_tokens);
      CHECK(drawn[b].node_tokens == serial.node_tokens);
      CHECK(drawn[b].expert_tokens == serial.expert_tokens);
      CHECK(drawn[b].routed == serial.routed);
      CHECK(drawn[b].routed == 72 * 256 * s.model.top_k);
    }
  }
}

TEST_CASE("the same inference scenario gives the same run bit for bit",
          "[scenario][inference][determinism]") {
  // The Mixtral example, and an expert-parallel layout with two-batch overlap
  // and skewed routing.
  Json ep = serving_doc("tiny-moe", 4, {{"tp", 1}, {"attention_dp", 4}, {"ep", 4}},
                        {{"count", 300},
                         {"arrival", "poisson"},
                         {"rate_per_s", 2000},
                         {"input_tokens", {{"dist", "lognormal"}, {"mean", 300}, {"std", 200}}},
                         {"output_tokens", {{"dist", "uniform"}, {"min", 1}, {"max", 64}}}});
  ep["serving"] = {{"two_batch_overlap", true}, {"chunked_prefill", 256}};
  ep["routing"] = {{"generator", "zipf:1.2"}, {"seed", 5}};
  for (const Json& doc : {load_example("mixtral-8x7b-h100-tp2-poisson.json"), ep}) {
    const InferenceRun a = run_inference(doc);
    const InferenceRun b = run_inference(doc);
    REQUIRE(a.simulated());
    CHECK(a.result.iterations > 100);
    CHECK(fingerprint(a) == fingerprint(b));
  }
  // A different routing seed changes the run: the fingerprint sees it.
  Json reseeded = ep;
  reseeded["routing"]["seed"] = 6;
  CHECK(fingerprint(run_inference(ep)) != fingerprint(run_inference(reseeded)));
}

// Two single-GPU nodes: prefill on node 0, decode on node 1.
Json disaggregated(Json requests) {
  Json doc = serving_doc("tiny-moe", 1, Json::object(), std::move(requests));
  doc["cluster"]["nodes"] = 2;
  doc["parallel"] = {{"disaggregation",
                      {{"prefill", {{"nodes", 1}, {"parallel", {{"tp", 1}}}}},
                       {"decode", {{"nodes", 1}, {"parallel", {{"tp", 1}}}}}}}};
  return doc;
}

TEST_CASE("EPLB replicas on a layout without expert parallelism are named with what they cost",
          "[scenario][inference]") {
  const auto replica_warning = [](const InferenceRun& r) -> std::string {
    for (const std::string& w : r.warnings) {
      if (w.starts_with("gating.redundant_experts")) return w;
    }
    return "";
  };
  Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(4, 2, 64, 4));
  const InferenceRun plain = run_inference(doc);
  doc["gating"] = {{"redundant_experts", 8}};  // tiny-moe has 8 experts: twice the weights
  const InferenceRun doubled = run_inference(doc);
  REQUIRE(doubled.simulated());
  const double experts = plain.memory[0].memory.expert_weight_bytes;
  CHECK(doubled.memory[0].memory.expert_weight_bytes == Approx(2 * experts));
  CHECK(replica_warning(plain).empty());
  CHECK(replica_warning(doubled) ==
        fmt::format("gating.redundant_experts = 8: the serving instances have ep 1, so each GPU "
                    "holds every expert and the replicas balance nothing; they take {:.1f} GiB "
                    "of weights per GPU",
                    experts / (1ull << 30)));
  // Expert-parallel: the replicas spread the hot experts; no warning.
  Json ep = serving_doc("tiny-moe", 2, {{"attention_dp", 2}, {"ep", 2}}, closed_loop(4, 2, 64, 4));
  ep["gating"] = {{"redundant_experts", 8}};
  CHECK(replica_warning(run_inference(ep)).empty());
  // Disaggregated: only the role without expert parallelism is named.
  Json split = disaggregated(closed_loop(4, 2, 64, 4));
  split["gating"] = {{"redundant_experts", 8}};
  split["cluster"]["node"] = {{"gpus_per_node", 2}};
  split["parallel"]["disaggregation"]["prefill"]["parallel"] = {{"attention_dp", 2}, {"ep", 2}};
  split["parallel"]["disaggregation"]["decode"]["parallel"] = {{"tp", 2}};
  CHECK_THAT(replica_warning(run_inference(split)),
             Catch::StartsWith("gating.redundant_experts = 8: the decode instances have ep 1"));
}

TEST_CASE("disaggregated serving completes every request with its first token before its finish",
          "[scenario][inference][disaggregation]") {
  const InferenceRun run = run_inference(
      disaggregated({{"count", 200},
                     {"arrival", "poisson"},
                     {"rate_per_s", 500},
                     {"input_tokens", {{"dist", "uniform"}, {"min", 64}, {"max", 2048}}},
                     {"output_tokens", {{"dist", "uniform"}, {"min", 1}, {"max", 32}}}}));
  REQUIRE(run.simulated());
  REQUIRE(run.scenario.disaggregated());
  check_tokens_delivered(run);
  for (const exec::RequestOutcome& o : run.result.requests) {
    CHECK(o.arrival_s < o.first_token_s);
    if (o.output_tokens > 1) {
      CHECK(o.first_token_s < o.finish_s);
    } else {
      CHECK(o.first_token_s == o.finish_s);
    }
  }
  const exec::ServingMetrics& m = *run.metrics;
  CHECK(m.decode.prompt_tokens == 0);  // decode instances never prefill
  CHECK(m.prefill.decode_tokens == 0);
  CHECK(m.decode.decode_tokens == requested_output(run) - 200);  // first tokens come from prefill
  CHECK(run.result.kv_blocks_allocated == run.result.kv_blocks_freed);
}

TEST_CASE("a disaggregated lone request pays its prefill and one KV transfer and its decodes",
          "[scenario][inference][disaggregation]") {
  const int64_t input = 1024, output = 8;
  const InferenceRun run = run_inference(disaggregated(closed_loop(1, 1, input, output)));
  REQUIRE(run.simulated());
  const exec::ServingMetrics& m = *run.metrics;
  // The prompt's cache crosses from GPU 0 (node 0) to GPU 1 (node 1).
  const double transfer_s = coll::send_recv_seconds(
      run.scenario.cluster, 0, 1, input * run.memory[0].kv_bytes_per_token_per_gpu);
  CHECK(transfer_s > 0);
  CHECK(m.e2e.mean_s ==
        Approx(m.prefill.seconds + transfer_s + m.decode.seconds).margin(output * 1e-12));
}

TEST_CASE("a windowed model's prompt moves only its windows' cache to the decode instance",
          "[scenario][inference][disaggregation]") {
  // tiny-moe with every other layer sliding over 64 tokens: the 1,024-token
  // prompt's cache is 1,024 tokens on two layers and 64 on the other two.
  const int64_t input = 1024, output = 8;
  Json doc = disaggregated(closed_loop(1, 1, input, output));
  doc["model"] = {
      {"preset", "tiny-moe"},
      {"attention", {{"window", {{"kind", "sliding"}, {"tokens", 64}, {"full_every", 2}}}}}};
  const InferenceRun run = run_inference(doc);
  REQUIRE(run.simulated());
  const exec::ServingMetrics& m = *run.metrics;
  const double transfer_s = coll::send_recv_seconds(
      run.scenario.cluster, 0, 1, (1024.0 + 64.0) / 2 * run.memory[0].kv_bytes_per_token_per_gpu);
  CHECK(m.e2e.mean_s ==
        Approx(m.prefill.seconds + transfer_s + m.decode.seconds).margin(output * 1e-12));
}

TEST_CASE("a disaggregated request's TTFT includes its KV transfer and its TPOT is decode only",
          "[scenario][inference][disaggregation]") {
  const int64_t input = 1024, output = 8;
  const InferenceRun run = run_inference(disaggregated(closed_loop(1, 1, input, output)));
  REQUIRE(run.simulated());
  const exec::ServingMetrics& m = *run.metrics;
  const double transfer_s = coll::send_recv_seconds(
      run.scenario.cluster, 0, 1, input * run.memory[0].kv_bytes_per_token_per_gpu);
  CHECK(m.ttft.mean_s == Approx(m.prefill.seconds + transfer_s).margin(1e-12));
  CHECK(m.tpot.mean_s == Approx(m.decode.seconds / (output - 1)).margin(1e-12));
}

TEST_CASE("bad request loads are one-line errors naming the field", "[scenario][inference]") {
  const Json ok = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(2, 1, 64, 4));
  REQUIRE(error_of(ok).empty());
  auto with_requests = [&](Json requests) {
    Json doc = ok;
    doc["requests"] = std::move(requests);
    return error_of(doc);
  };
  const Json poisson = {
      {"count", 4}, {"arrival", "poisson"}, {"input_tokens", 64}, {"output_tokens", 4}};
  for (const double rate : {0.0, -5.0}) {
    Json r = poisson;
    r["rate_per_s"] = rate;
    const std::string e = with_requests(r);
    INFO(e);
    CHECK_THAT(e, Catch::Contains("requests.rate_per_s"));
    CHECK(e.find('\n') == std::string::npos);
  }
  const std::string no_rate = with_requests(poisson);
  CHECK_THAT(no_rate, Catch::Contains("requests.rate_per_s"));
  const std::string zero = with_requests(closed_loop(2, 0, 64, 4));
  CHECK_THAT(zero, Catch::Contains("requests.concurrency"));
  CHECK(zero.find('\n') == std::string::npos);
  CHECK_THAT(with_requests(closed_loop(2, 1, 0, 4)), Catch::Contains("requests.input_tokens"));
  Json missing = ok;
  missing.erase("requests");
  CHECK_THAT(error_of(missing), Catch::Contains("requests"));
}

TEST_CASE("a malformed request trace line is rejected with its line number",
          "[scenario][inference]") {
  const fs::path path =
      fs::temp_directory_path() / ("moesim-inference-trace-" + std::to_string(getpid()) + ".jsonl");
  {
    std::ofstream out(path);
    out << R"({"arrival_s": 0, "input_tokens": 64, "output_tokens": 4})" << '\n'
        << '\n'
        << R"({"arrival_s": 0.1, "input_tokens": 64, "output_tokens": 4})" << '\n'
        << R"({"arrival_s": 0.2, "input_tokens": 64, "output_tokens": )" << '\n';
  }
  const Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, {{"trace", path.string()}});
  const std::string e = error_of(doc);
  std::remove(path.string().c_str());
  INFO(e);
  CHECK_THAT(e, Catch::Contains("line 4"));
  CHECK(e.find('\n') == std::string::npos);
}

TEST_CASE("bad serving and layout fields are rejected with their path or code",
          "[scenario][inference]") {
  Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(2, 1, 64, 4));
  doc["serving"] = {{"max_batch", 4}};
  const std::string unknown = error_of(doc);
  CHECK_THAT(unknown, Catch::Contains("serving.max_batch") && Catch::Contains("unknown field"));
  doc["serving"] = {{"preemption", "drop"}};
  CHECK_THAT(error_of(doc), Catch::Contains("serving.preemption"));
  doc["serving"] = {{"max_batch_size", 0}};
  CHECK_THAT(error_of(doc), Catch::Contains("serving.max_batch_size"));
  doc["serving"] = {{"slo", Json::object()}};
  CHECK_THAT(error_of(doc), Catch::Contains("serving.slo"));
  doc["serving"] = {{"preemption", "swap"}, {"swap_space_gib", -1}};
  CHECK_THAT(error_of(doc), Catch::Contains("serving.swap_space_gib"));
  // 100,000 GiB per GPU is more host memory than a node has (vLLM refuses
  // a swap space over 70% of it); unused without swap preemption.
  doc["serving"] = {{"preemption", "swap"}, {"swap_space_gib", 1e5}};
  const std::string host = error_of(doc);
  CHECK_THAT(host,
             Catch::Contains("serving.swap_space_gib") && Catch::Contains("node.host_memory_gb"));
  doc["serving"] = {{"preemption", "recompute"}, {"swap_space_gib", 1e5}};
  CHECK(error_of(doc).empty());

  // tiny-moe has 8 experts: ep 3 over 3 GPUs divides the GPUs, not the experts.
  const Json three = serving_doc("tiny-moe", 3, {{"tp", 1}, {"attention_dp", 3}, {"ep", 3}},
                                 closed_loop(2, 1, 64, 4));
  CHECK(rejection(three) == "ep_divides_experts");
  CHECK_THAT(error_of(three), Catch::Contains("parallel.ep"));
  CHECK(check_inference(three).reason_code == "ep_divides_experts");
  // Attention replicas need the experts spread over every GPU of the instance.
  const Json partial = serving_doc("tiny-moe", 4, {{"tp", 1}, {"attention_dp", 4}, {"ep", 2}},
                                   closed_loop(2, 1, 64, 4));
  CHECK(rejection(partial) == "attention_dp_needs_ep");
  const Json uneven = serving_doc("tiny-moe", 3, {{"tp", 2}}, closed_loop(2, 1, 64, 4));
  CHECK(rejection(uneven) == "gpu_count");
}

// SGLang refuses --enable-two-batch-overlap without an all-to-all backend
// (python/sglang/srt/server_args.py): without ep there is nothing to hide.
TEST_CASE("two-batch overlap without expert parallelism is refused, naming the layout's ep",
          "[scenario][inference]") {
  Json tp_only = serving_doc("tiny-moe", 2, {{"tp", 2}}, closed_loop(4, 2, 64, 4));
  tp_only["serving"] = {{"two_batch_overlap", true}};
  const std::string e = error_of(tp_only);
  INFO(e);
  CHECK_THAT(e,
             Catch::Contains("serving.two_batch_overlap") && Catch::Contains("parallel.ep is 1"));
  CHECK(e.find('\n') == std::string::npos);
  tp_only["serving"]["two_batch_overlap"] = false;
  CHECK(run_inference(tp_only).simulated());

  Json split = serving_doc("tiny-moe", 2, Json::object(), closed_loop(4, 2, 64, 4));
  split["cluster"]["nodes"] = 2;
  split["serving"] = {{"two_batch_overlap", true}};
  const Json ep_role = {{"nodes", 1}, {"parallel", {{"attention_dp", 2}, {"ep", 2}}}};
  split["parallel"] = {
      {"disaggregation",
       {{"prefill", ep_role}, {"decode", {{"nodes", 1}, {"parallel", {{"tp", 2}}}}}}}};
  CHECK_THAT(error_of(split), Catch::Contains("parallel.disaggregation.decode.parallel.ep is 1"));
  split["parallel"]["disaggregation"]["decode"] = ep_role;
  CHECK(run_inference(split).simulated());
}

TEST_CASE("a request longer than the KV cache is rejected up front", "[scenario][inference]") {
  Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(2, 1, 64, 4));
  doc["options"]["reserved_memory_gib"] = reserve_leaving(doc, 4);  // 256 tokens of cache
  doc["requests"] = closed_loop(2, 1, 200, 100);
  CHECK(rejection(doc) == "kv_capacity");
  CHECK(check_inference(doc).reason_code == "kv_capacity");
  doc["requests"] = closed_loop(2, 1, 200, 50);  // 250 tokens: fits
  CHECK(run_inference(doc).simulated());
}

TEST_CASE("a load that needs more iterations than options.max_iterations is refused up front",
          "[scenario][inference]") {
  // One request at a time: each iteration yields one token, 3 x 40 in all.
  Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(3, 1, 16, 40));
  doc["options"]["max_iterations"] = 119;
  CHECK_THAT(error_of(doc), Catch::StartsWith("options.max_iterations: serving these requests "
                                              "takes at least 120 iterations (120 tokens"));
  doc["options"]["max_iterations"] = 120;
  const InferenceRun run = run_inference(doc);
  REQUIRE(run.simulated());
  CHECK(run.result.iterations == 120);
  // 10^8 tokens one at a time under the default limit of 2 x 10^7: refused
  // before any of it runs (it would take minutes to reach the limit).
  doc["options"].erase("max_iterations");
  doc["requests"] = closed_loop(100'000, 1, 16, 1000);
  CHECK_THAT(error_of(doc), Catch::Contains("at least 100000000 iterations"));
}

// vLLM refuses max_num_batched_tokens below max_model_len without chunked
// prefill (SchedulerConfig._verify_args): such a sequence could never run.
TEST_CASE("without chunked prefill a sequence longer than max_num_tokens is rejected up front",
          "[scenario][inference]") {
  Json doc = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(2, 1, 200, 60));
  doc["serving"] = {{"max_num_tokens", 256}};  // 200 + 60 tokens: one too many
  CHECK(rejection(doc) == "token_budget");
  const std::string e = error_of(doc);
  INFO(e);
  CHECK_THAT(e, Catch::Contains("request 0") && Catch::Contains("200 input + 60 output") &&
                    Catch::Contains("serving.max_num_tokens = 256") &&
                    Catch::Contains("serving.chunked_prefill"));
  CHECK(e.find('\n') == std::string::npos);
  doc["requests"] = closed_loop(2, 1, 200, 56);  // 256 tokens: fits
  CHECK(run_inference(doc).simulated());
  doc["requests"] = closed_loop(2, 1, 200, 60);
  doc["serving"]["chunked_prefill"] = 128;  // computed in chunks: runs
  CHECK(run_inference(doc).simulated());

  // A prefill instance computes prompts only; a decode instance none.
  Json split = serving_doc("tiny-moe", 1, Json::object(), closed_loop(2, 1, 200, 60));
  split["cluster"]["nodes"] = 2;
  split["serving"] = {{"max_num_tokens", 256}};
  const Json one_gpu = {{"nodes", 1}, {"parallel", {{"tp", 1}}}};
  split["parallel"] = {{"disaggregation", {{"prefill", one_gpu}, {"decode", one_gpu}}}};
  CHECK(run_inference(split).simulated());
  split["requests"] = closed_loop(2, 1, 300, 4);
  CHECK_THAT(error_of(split), Catch::Contains("300 input + 4 output") &&
                                  Catch::Contains("its prompt is computed whole"));
  split["parallel"]["disaggregation"].erase("prefill");
  split["cluster"]["nodes"] = 1;
  CHECK(run_inference(split).simulated());

  // Not given, the budget is 8,192, or without chunked prefill the longest
  // request if that is more: vLLM's max(max_model_len, default).
  Json defaults = serving_doc("tiny-moe", 1, {{"tp", 1}}, closed_loop(2, 1, 10000, 100));
  CHECK(run_inference(defaults).scenario.serving.max_num_tokens == 10100);
  defaults["serving"] = {{"chunked_prefill", 512}};
  CHECK(run_inference(defaults).scenario.serving.max_num_tokens == 8192);
  defaults["serving"] = Json::object();
  defaults["requests"] = closed_loop(2, 1, 100, 10);
  CHECK(run_inference(defaults).scenario.serving.max_num_tokens == 8192);
}

TEST_CASE("weights that do not fit give an out_of_memory run and not an error",
          "[scenario][inference]") {
  // DeepSeek-V3 in FP8 on one 8-GPU node: ~94 GiB of weights per GPU.
  Json doc = serving_doc("deepseek-v3", 8, {{"tp", 1}, {"attention_dp", 8}, {"ep", 8}},
                         closed_loop(4, 4, 128, 4));
  doc["workload"]["dtype"] = "fp8";
  const InferenceRun run = run_inference(doc);
  CHECK_FALSE(run.simulated());
  REQUIRE(run.memory.size() == 1);
  CHECK_FALSE(run.memory[0].memory.fits());
  CHECK(run.memory[0].memory.weight_bytes() > run.memory[0].memory.capacity_bytes);
  CHECK(run.result.requests.empty());
  REQUIRE_FALSE(run.warnings.empty());
  CHECK_THAT(run.warnings[0], Catch::Contains("out of memory"));
  const ScenarioCheck check = check_inference(doc);
  CHECK_FALSE(check.valid);
  CHECK(check.reason_code == "out_of_memory");
  CHECK(check.peak_memory_bytes > check.memory_capacity_bytes);
}

}  // namespace
}  // namespace moesim::scenario
