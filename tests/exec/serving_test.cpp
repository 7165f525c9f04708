// The serving simulator (exec/serving.h) against closed forms: one request
// alone costs exactly its iterations, a one-at-a-time server under Poisson
// arrivals queues as M/D/1, Little's law holds on the measured occupancy,
// KV blocks and tokens are conserved through preemptions, and a
// disaggregated request pays its KV transfer once.
//
// The iteration costs come from a real InferenceCostModel over the small
// test model at fixed FLOP and byte rates (test_costs.h), with a routing
// that depends only on the token count, so every expected time can be
// asked of the cost model for the batch the scheduler should form.

#include "sim/exec/serving.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>
#include <vector>

#include "sim/core/rng.h"
#include "sim/exec/inference_costs.h"
#include "sim/exec/serving_metrics.h"
#include "tests/exec/test_costs.h"

namespace moesim::exec {
namespace {

// Every token's top_k copies spread round-robin over the experts: an
// iteration's cost depends on its batch alone.
class SpreadRouting final : public IterationRouting {
 public:
  SpreadRouting(int experts, int top_k) : experts_(experts), top_k_(top_k) {}
  using IterationRouting::route;
  const std::vector<RoutingSample>& route(uint64_t, std::span<const int64_t> tokens_per_rank,
                                          const IterationSequences&) override {
    RoutingSample rs;
    rs.ep = 1;
    rs.local_experts = experts_;
    const int64_t copies = tokens_per_rank[0] * top_k_;
    rs.expert_tokens.assign(experts_, 0);
    for (int e = 0; e < experts_; ++e)
      rs.expert_tokens[e] = copies / experts_ + (e < copies % experts_);
    rs.pair_tokens = {copies};
    rs.tokens_in = tokens_per_rank[0];
    rs.routed = copies;
    samples_.assign(1, rs);
    return samples_;
  }

 private:
  int experts_, top_k_;
  std::vector<RoutingSample> samples_;
};

double no_collective(const coll::Collective&) {
  return 0;
}

// The small test model (2 MoE layers, hidden 1024, 8 MHA heads of 128, 8
// experts, top-2) on one GPU at 2 TFLOP/s and 10 GB/s: decode attention is
// bound by reading the KV cache.
constexpr double kFlopsPerS = 2e12, kBytesPerS = 1e10;

struct OneGpu {
  ModelShape shape = testing::tiny_moe(2);
  testing::LinearCost gpu{kFlopsPerS, kBytesPerS};
  SpreadRouting routing{shape.experts, shape.top_k};
  InferenceCostModel cost{
      shape, InferenceParallel{}, hw::DType::kBf16, hw::DType::kBf16, gpu, no_collective, {0}, 0};
  ServingSetup setup;

  explicit OneGpu(int64_t kv_blocks = 1 << 20, InstanceRole role = InstanceRole::kMixed) {
    add_instance(role, kv_blocks);
    setup.host_link_bytes_per_s = 64e9;
  }
  OneGpu(const OneGpu&) = delete;  // setup points into this object

  void add_instance(InstanceRole role, int64_t kv_blocks) {
    setup.instances.push_back({role, 1, 1, kv_blocks, &cost, &routing});
  }
  // One iteration of a single replica running `batch`.
  double seconds(const ReplicaBatch& batch) {
    return cost.iteration(std::span<const ReplicaBatch>(&batch, 1), routing, 0).seconds;
  }
  // A whole prompt of `tokens` computed in one iteration (it samples a token).
  double prefill_s(int64_t tokens) {
    ReplicaBatch b;
    b.prefill.push_back({tokens, 0});
    b.sampled = 1;
    return seconds(b);
  }
  // One sequence decoding with `context` tokens in its KV cache.
  double decode_s(int64_t context) {
    ReplicaBatch b;
    b.decode_sequences = 1;
    b.decode_context_tokens = context;
    b.sampled = 1;
    return seconds(b);
  }
};

// Times cross the engine as whole picoseconds: one rounding per iteration.
constexpr double kRounding = 1e-12;

int64_t total_output(const std::vector<ServingRequest>& requests) {
  int64_t n = 0;
  for (const ServingRequest& r : requests) n += r.output_tokens;
  return n;
}

// `count` requests arriving as a Poisson process of `rate_per_s`, lengths
// uniform in [in_lo, in_hi] and [out_lo, out_hi].
std::vector<ServingRequest> poisson_requests(int count, double rate_per_s, int64_t in_lo,
                                             int64_t in_hi, int64_t out_lo, int64_t out_hi,
                                             uint64_t seed) {
  Rng rng(seed, 0);
  std::vector<ServingRequest> out;
  double at = 0;
  for (int i = 0; i < count; ++i) {
    at += rng.exponential(1 / rate_per_s);
    const int64_t in = in_lo + static_cast<int64_t>(rng.below(in_hi - in_lo + 1));
    const int64_t gen = out_lo + static_cast<int64_t>(rng.below(out_hi - out_lo + 1));
    out.push_back({at, in, gen});
  }
  return out;
}

TEST_CASE("a request alone costs one prefill iteration then one decode iteration per token",
          "[exec][serving]") {
  OneGpu g;
  const int64_t input = 512, output = 8;
  const double arrival_s = 0.25;
  const ServingResult r = simulate_serving(g.setup, {{arrival_s, input, output}});
  REQUIRE(r.requests.size() == 1);
  const RequestOutcome& o = r.requests[0];
  REQUIRE(o.finished());
  CHECK(o.generated == output);
  // Decode j (1-based) reads the prompt and the j - 1 tokens decoded before it.
  const double prefill = g.prefill_s(input);
  double decode = 0;
  for (int64_t j = 1; j < output; ++j) decode += g.decode_s(input + j - 1);
  CHECK(o.arrival_s == arrival_s);
  CHECK(o.first_token_s - o.arrival_s == Approx(prefill).margin(kRounding));
  CHECK(o.finish_s - o.arrival_s == Approx(prefill + decode).margin(output * kRounding));
  const ServingMetrics m = serving_metrics(r, ServingConfig{}, 1, 1);
  CHECK(m.ttft.mean_s == Approx(prefill).margin(kRounding));
  CHECK(m.tpot.mean_s == Approx(decode / (output - 1)).margin(kRounding));
  CHECK(r.prefill.iterations == 1);
  CHECK(r.decode.iterations == output - 1);
  CHECK(r.decode.seconds == Approx(decode).margin(output * kRounding));
  CHECK(r.inter_token.count() == static_cast<uint64_t>(output - 1));
  // Decode is bound by reading the cache: each context token adds its keys
  // and values (2 x 8 heads x 128 x 2 bytes per layer, 2 layers) at 10 GB/s.
  const double per_context_token_s = 2 * (2.0 * 8 * 128 * 2) / kBytesPerS;
  CHECK(g.decode_s(input + 1) - g.decode_s(input) == Approx(per_context_token_s).epsilon(1e-6));
  CHECK(prefill > 10 * g.decode_s(input));
}

TEST_CASE("a request arriving while the instance is idle starts at its arrival and not before",
          "[exec][serving]") {
  OneGpu g;
  // Two requests far apart: the second sees an idle instance and the same
  // latencies as the first.
  const ServingResult r = simulate_serving(g.setup, {{0, 256, 4}, {10, 256, 4}});
  REQUIRE(r.requests.size() == 2);
  const double e2e0 = r.requests[0].finish_s - r.requests[0].arrival_s;
  const double e2e1 = r.requests[1].finish_s - r.requests[1].arrival_s;
  CHECK(r.requests[1].arrival_s == 10);
  CHECK(e2e1 == Approx(e2e0).margin(4 * kRounding));
  CHECK(r.makespan_s == Approx(10 + e2e1).margin(4 * kRounding));
  // The GPU was busy for both requests and idle in between.
  CHECK(r.prefill.gpu_seconds + r.decode.gpu_seconds == Approx(2 * e2e0).margin(8 * kRounding));
  CHECK(r.gpu_idle_s == Approx(10 - e2e0).margin(8 * kRounding));
}

TEST_CASE("GPU time over a run is busy or idle and adds up to the run's duration",
          "[exec][serving]") {
  OneGpu g;
  g.add_instance(InstanceRole::kMixed, 1 << 20);  // two one-GPU instances
  // The first request arrives at 0.5 s: the run (and its idle time) starts there.
  auto requests = poisson_requests(200, 2 / g.prefill_s(512), 64, 1024, 1, 32, 9);
  for (ServingRequest& q : requests) q.arrival_s += 0.5;
  const ServingResult r = simulate_serving(g.setup, requests);
  const double busy = r.prefill.gpu_seconds + r.decode.gpu_seconds;
  CHECK(busy + r.gpu_idle_s == Approx(2 * r.makespan_s).epsilon(1e-9));
}

TEST_CASE("requests arriving at the same instant on an idle instance share its next iteration",
          "[exec][serving]") {
  OneGpu g;
  g.setup.recorded_iterations = 10;
  const ServingResult r = simulate_serving(g.setup, {{0.5, 100, 1}, {0.5, 200, 1}, {0.5, 300, 1}});
  CHECK(r.prefill.iterations == 1);
  REQUIRE_FALSE(r.timeline.empty());
  CHECK(r.timeline[0].prompt_tokens == 600);
  for (const RequestOutcome& o : r.requests) CHECK(o.finish_s == r.requests[0].finish_s);
}

TEST_CASE("the mean running batch is averaged over iterations that ran", "[exec][serving]") {
  OneGpu g;
  const ServingResult r = simulate_serving(g.setup, {{0, 256, 8}});
  CHECK(r.iterations == 8);
  CHECK(r.batch_max == 1);
  CHECK(r.batch_mean == 1.0);
}

TEST_CASE("inter-token gap percentiles come within a bin (0.1%) of the exact ones",
          "[exec][serving]") {
  GapHistogram h;
  std::vector<double> gaps;
  Rng rng(4, 0);
  for (int i = 0; i < 10000; ++i) {
    gaps.push_back(1e-3 * std::exp(2 * rng.normal()));  // 1 ms, spread over decades
    h.add(gaps.back());
  }
  std::sort(gaps.begin(), gaps.end());
  CHECK(h.count() == gaps.size());
  CHECK(h.mean() ==
        Approx(std::accumulate(gaps.begin(), gaps.end(), 0.0) / gaps.size()).epsilon(1e-12));
  for (const double q : {0.01, 0.5, 0.9, 0.99}) {
    INFO("q " << q);
    CHECK(h.quantile(q) == Approx(nearest_rank(gaps, q)).epsilon(1e-3));
  }
}

// Pollaczek-Khinchine for deterministic service S at load rho:
// W = rho S / (2 (1 - rho)) (Kleinrock, Queueing Systems vol. 1, eq. 5.73).
TEST_CASE("one-at-a-time serving under Poisson arrivals waits as M/D/1", "[exec][serving]") {
  OneGpu g;
  g.setup.config.max_batch_size = 1;
  const int64_t input = 256;
  const double service_s = g.prefill_s(input);  // output 1: the prefill is the whole service
  for (const double rho : {0.3, 0.5}) {
    INFO("rho " << rho);
    const int count = 20000;
    auto requests = poisson_requests(count, rho / service_s, input, input, 1, 1, 1);
    const ServingResult r = simulate_serving(g.setup, std::move(requests));
    double wait = 0;
    for (const RequestOutcome& o : r.requests) {
      REQUIRE(o.finished());
      // Served alone, in one iteration: first token and finish coincide.
      REQUIRE(o.finish_s == o.first_token_s);
      wait += o.first_token_s - o.arrival_s - service_s;
    }
    wait /= count;
    const double expected = rho * service_s / (2 * (1 - rho));
    CHECK(wait == Approx(expected).epsilon(0.05));
    CHECK(r.prefill.iterations == count);
    CHECK(r.batch_max == 1);
    // Busy time is the service total; the rest of the run was idle.
    CHECK(r.prefill.seconds == Approx(count * service_s).epsilon(1e-9));
  }
}

TEST_CASE("the measured requests in system obey Little's law", "[exec][serving]") {
  OneGpu g;
  g.setup.config.max_batch_size = 8;
  g.setup.config.max_num_tokens = 2048;
  g.setup.config.chunked_prefill = 512;
  // Four arrivals per lone request's service time: only batching keeps up,
  // and queues form and clear.
  const double service_s = g.prefill_s(600) + 40 * g.decode_s(600);
  auto requests = poisson_requests(3000, 4 / service_s, 100, 1100, 1, 80, 5);
  const int64_t output = total_output(requests);
  const ServingResult r = simulate_serving(g.setup, std::move(requests));
  const ServingMetrics m = serving_metrics(r, ServingConfig{}, 1, 1);
  REQUIRE(m.completed == 3000);
  CHECK(m.output_tokens == output);
  CHECK(r.batch_max == 8);  // the batch filled: there was queueing
  CHECK(m.ttft.p99_s > 2 * g.prefill_s(1100));
  // L = lambda W, lambda = completions over the run.
  const double little = m.completed / m.duration_s * m.e2e.mean_s;
  CHECK(m.mean_requests_in_system > 1);
  CHECK(m.mean_requests_in_system == Approx(little).epsilon(1e-9));
}

// A run where 24 requests of 128 + 256 tokens (24 blocks of 16 each at the
// end) share 96 blocks: admissions fill the cache and decodes must preempt.
ServingResult crowded_run(OneGpu& g, ServingConfig::Preemption preemption,
                          std::vector<ServingRequest>& requests) {
  g.setup.config.kv_block_tokens = 16;
  g.setup.config.preemption = preemption;
  for (int i = 0; i < 24; ++i) requests.push_back({0.001 * i, 128, 200 + 8 * (i % 8)});
  return simulate_serving(g.setup, requests);
}

TEST_CASE("KV blocks are conserved and every token delivered through recompute preemptions",
          "[exec][serving][kv]") {
  OneGpu g(96);
  std::vector<ServingRequest> requests;
  const ServingResult r = crowded_run(g, ServingConfig::Preemption::kRecompute, requests);
  CHECK(r.preemptions > 0);
  CHECK(r.kv_blocks_allocated == r.kv_blocks_freed);
  CHECK(r.kv_blocks_allocated > 96);  // blocks were reused
  CHECK(r.kv_peak_utilisation <= 1.0);
  int64_t generated = 0, preempted = 0;
  for (size_t i = 0; i < r.requests.size(); ++i) {
    const RequestOutcome& o = r.requests[i];
    INFO("request " << i);
    REQUIRE(o.finished());
    CHECK(o.generated == requests[i].output_tokens);
    CHECK(o.first_token_s <= o.finish_s);
    generated += o.generated;
    preempted += o.preemptions;
  }
  CHECK(generated == total_output(requests));
  CHECK(preempted == r.preemptions);
  // Recompute prefills preempted requests again: more prompt tokens than asked.
  CHECK(r.prefill.prompt_tokens > 24 * 128);
}

// Two requests of 10 + 20 tokens on a cache of 40 one-token blocks: after
// the prefill (20 blocks) and 10 decodes each (40), the older request's next
// token preempts the newer one, which holds its 10 prompt tokens and the 10
// decoded tokens it fed back (11 generated, the last not yet in its cache).
// It waits until the older one finishes (29 blocks), then recomputes.
TEST_CASE("a recomputed request prefills its prompt and every token it generated",
          "[exec][serving][kv]") {
  OneGpu g(40);
  g.setup.config.kv_block_tokens = 1;
  g.setup.concurrency = 2;  // both start in the first iteration
  const ServingResult r = simulate_serving(g.setup, {{0, 10, 20}, {0, 10, 20}});
  REQUIRE(r.requests.size() == 2);
  CHECK(r.preemptions == 1);
  CHECK(r.requests[1].preemptions == 1);
  CHECK(r.requests[1].generated == 20);
  CHECK(r.kv_blocks_allocated == r.kv_blocks_freed);
  // Prompts 10 + 10, then 21 recomputed.
  CHECK(r.prefill.prompt_tokens == 10 + 10 + 21);
  // A: 19 decodes; B: 10 before, 8 after (tokens 13..20).
  CHECK(r.prefill.decode_tokens + r.decode.decode_tokens == 19 + 10 + 8);
  // One block per token computed: B's recompute and later decodes end with
  // 29 blocks, as A did.
  CHECK(r.kv_blocks_allocated == 10 + 10 + 19 + 10 + (21 + 8));
}

TEST_CASE("KV blocks are conserved and every token delivered through swap preemptions",
          "[exec][serving][kv]") {
  OneGpu g(96);
  std::vector<ServingRequest> requests;
  const ServingResult r = crowded_run(g, ServingConfig::Preemption::kSwap, requests);
  CHECK(r.preemptions > 0);
  CHECK(r.kv_blocks_allocated == r.kv_blocks_freed);
  int64_t generated = 0;
  for (size_t i = 0; i < r.requests.size(); ++i) {
    INFO("request " << i);
    REQUIRE(r.requests[i].finished());
    CHECK(r.requests[i].generated == requests[i].output_tokens);
    generated += r.requests[i].generated;
  }
  CHECK(generated == total_output(requests));
  // Swap keeps the cache: no prompt is computed twice.
  CHECK(r.prefill.prompt_tokens == 24 * 128);
  // The default swap space (4 GiB per GPU) holds every victim, and every
  // swapped block comes back.
  CHECK(r.swap_fallbacks == 0);
  CHECK(r.swap_blocks_out > 0);
  CHECK(r.swap_blocks_out == r.swap_blocks_in);
}

TEST_CASE("with no swap space, swap preemption recomputes exactly as recompute does",
          "[exec][serving][kv]") {
  OneGpu recompute_gpu(96), swap_gpu(96);
  std::vector<ServingRequest> requests, same;
  const ServingResult recompute =
      crowded_run(recompute_gpu, ServingConfig::Preemption::kRecompute, requests);
  swap_gpu.setup.config.swap_space_bytes = 0;
  const ServingResult swap = crowded_run(swap_gpu, ServingConfig::Preemption::kSwap, same);
  REQUIRE(recompute.preemptions > 0);
  CHECK(swap.preemptions == recompute.preemptions);
  CHECK(swap.swap_fallbacks == swap.preemptions);
  CHECK(swap.swap_blocks_out == 0);
  CHECK(swap.prefill.prompt_tokens == recompute.prefill.prompt_tokens);
  REQUIRE(swap.requests.size() == recompute.requests.size());
  for (size_t i = 0; i < swap.requests.size(); ++i) {
    INFO("request " << i);
    CHECK(swap.requests[i].finish_s == recompute.requests[i].finish_s);
  }
}

TEST_CASE("a swap space of a few blocks swaps the victims it holds and recomputes the rest",
          "[exec][serving][kv]") {
  // Room for 12 blocks of 16 tokens: one victim's 128-token prompt and more
  // (8 blocks and up) fits while the space is empty, not two at once.
  OneGpu g(96);
  g.setup.config.swap_space_bytes = 12.5 * 16 * g.cost.kv_bytes_per_token_per_gpu();
  std::vector<ServingRequest> requests;
  const ServingResult r = crowded_run(g, ServingConfig::Preemption::kSwap, requests);
  CHECK(r.swap_fallbacks > 0);
  CHECK(r.swap_fallbacks < r.preemptions);
  CHECK(r.swap_blocks_out > 0);
  CHECK(r.swap_blocks_out == r.swap_blocks_in);
  CHECK(r.kv_blocks_allocated == r.kv_blocks_freed);
  int64_t generated = 0;
  for (size_t i = 0; i < r.requests.size(); ++i) {
    INFO("request " << i);
    REQUIRE(r.requests[i].finished());
    generated += r.requests[i].generated;
  }
  CHECK(generated == total_output(requests));
  CHECK(r.prefill.prompt_tokens > 24 * 128);  // the recomputed ones prefilled again
}

TEST_CASE("each replica's swap space counts its own instance's KV blocks", "[exec][serving][kv]") {
  // Two instances under the same crowded load, one with an FP8 KV cache (half
  // the bytes per token). A swap space of 7.5 BF16 blocks of 16 tokens holds
  // no victim of the BF16 instance (each has 8 blocks or more) and 15 of the
  // FP8 one's blocks, so only the FP8 instance swaps.
  OneGpu g(96);
  const InferenceCostModel fp8_kv{
      g.shape, InferenceParallel{}, hw::DType::kBf16, hw::DType::kFp8, g.gpu, no_collective, {0},
      0};
  REQUIRE(fp8_kv.kv_bytes_per_token_per_gpu() == g.cost.kv_bytes_per_token_per_gpu() / 2);
  g.setup.config.swap_space_bytes = 7.5 * 16 * g.cost.kv_bytes_per_token_per_gpu();
  std::vector<ServingRequest> alone;
  const ServingResult bf16 = crowded_run(g, ServingConfig::Preemption::kSwap, alone);
  REQUIRE(bf16.preemptions > 0);
  CHECK(bf16.swap_fallbacks == bf16.preemptions);
  CHECK(bf16.swap_blocks_out == 0);

  g.setup.instances.push_back({InstanceRole::kMixed, 1, 1, 96, &fp8_kv, &g.routing});
  std::vector<ServingRequest> both;
  const ServingResult r = crowded_run(g, ServingConfig::Preemption::kSwap, both);
  CHECK(r.swap_blocks_out > 0);
  CHECK(r.swap_blocks_out == r.swap_blocks_in);
  CHECK(r.swap_fallbacks > 0);
  CHECK(r.kv_blocks_allocated == r.kv_blocks_freed);
}

TEST_CASE("a disaggregated request prefills then moves its cache then decodes",
          "[exec][serving][disaggregation]") {
  OneGpu g(1 << 20, InstanceRole::kPrefill);
  g.add_instance(InstanceRole::kDecode, 1 << 20);
  const double transfer_s_per_token = 1e-6;
  g.setup.kv_transfer_seconds = [&](int64_t tokens) { return tokens * transfer_s_per_token; };
  const int64_t input = 512, output = 6;
  const ServingResult r = simulate_serving(g.setup, {{0, input, output}});
  REQUIRE(r.requests.size() == 1);
  const RequestOutcome& o = r.requests[0];
  REQUIRE(o.finished());
  CHECK(o.generated == output);
  const double prefill = g.prefill_s(input), transfer = input * transfer_s_per_token;
  double decode = 0;
  for (int64_t j = 1; j < output; ++j) decode += g.decode_s(input + j - 1);
  CHECK(r.prefill.iterations == 1);
  CHECK(r.decode.iterations == output - 1);
  CHECK(o.finish_s == Approx(prefill + transfer + decode).margin(output * kRounding));
}

TEST_CASE("disaggregated TTFT includes the KV transfer and TPOT counts decode only",
          "[exec][serving][disaggregation]") {
  OneGpu g(1 << 20, InstanceRole::kPrefill);
  g.add_instance(InstanceRole::kDecode, 1 << 20);
  const double transfer_s_per_token = 1e-6;
  g.setup.kv_transfer_seconds = [&](int64_t tokens) { return tokens * transfer_s_per_token; };
  const int64_t input = 512, output = 6;
  const ServingResult r = simulate_serving(g.setup, {{0, input, output}});
  REQUIRE(r.requests.size() == 1);
  const RequestOutcome& o = r.requests[0];
  const double prefill = g.prefill_s(input), transfer = input * transfer_s_per_token;
  double decode = 0;
  for (int64_t j = 1; j < output; ++j) decode += g.decode_s(input + j - 1);
  CHECK(o.first_token_s - o.arrival_s == Approx(prefill + transfer).margin(kRounding));
  const ServingMetrics m = serving_metrics(r, ServingConfig{}, 2, 1);
  CHECK(m.tpot.mean_s == Approx(decode / (output - 1)).margin(output * kRounding));
}

TEST_CASE("KV transfers from one prefill replica go one after another",
          "[exec][serving][disaggregation]") {
  OneGpu g(1 << 20, InstanceRole::kPrefill);
  g.add_instance(InstanceRole::kDecode, 1 << 20);
  g.setup.concurrency = 2;  // both prompts in the first prefill iteration
  // Transfers long against a decode iteration: the decodes never overlap.
  const double transfer_s_per_token = 1e-5;
  g.setup.kv_transfer_seconds = [&](int64_t tokens) { return tokens * transfer_s_per_token; };
  const int64_t input = 512;
  const ServingResult r = simulate_serving(g.setup, {{0, input, 2}, {0, input, 2}});
  REQUIRE(r.requests.size() == 2);
  ReplicaBatch both;
  both.prefill = {{input, 0}, {input, 0}};
  both.sampled = 2;
  const double prefill = g.seconds(both), transfer = input * transfer_s_per_token;
  REQUIRE(transfer > 5 * g.decode_s(input));
  CHECK(r.prefill.iterations == 1);
  CHECK(r.decode.iterations == 2);
  CHECK(r.requests[0].finish_s ==
        Approx(prefill + transfer + g.decode_s(input)).margin(3 * kRounding));
  CHECK(r.requests[1].finish_s ==
        Approx(prefill + 2 * transfer + g.decode_s(input)).margin(3 * kRounding));
}

TEST_CASE("a disaggregated load completes every request with its tokens",
          "[exec][serving][disaggregation]") {
  OneGpu g(1 << 20, InstanceRole::kPrefill);
  g.add_instance(InstanceRole::kDecode, 1 << 20);
  g.add_instance(InstanceRole::kDecode, 1 << 20);
  g.setup.kv_transfer_seconds = [](int64_t tokens) { return tokens * 2e-7; };
  auto requests = poisson_requests(400, 200, 64, 1024, 1, 64, 3);
  const ServingResult r = simulate_serving(g.setup, requests);
  REQUIRE(r.requests.size() == requests.size());
  int64_t generated = 0;
  for (size_t i = 0; i < r.requests.size(); ++i) {
    const RequestOutcome& o = r.requests[i];
    INFO("request " << i);
    REQUIRE(o.finished());
    CHECK(o.generated == requests[i].output_tokens);
    CHECK(o.first_token_s >= o.arrival_s + g.prefill_s(requests[i].input_tokens) - kRounding);
    if (o.output_tokens > 1) CHECK(o.first_token_s < o.finish_s);
    generated += o.generated;
  }
  CHECK(generated == total_output(requests));
  CHECK(r.kv_blocks_allocated == r.kv_blocks_freed);
  // Prefill iterations carry every prompt token once; decode iterations the rest.
  int64_t prompt = 0;
  for (const ServingRequest& q : requests) prompt += q.input_tokens;
  CHECK(r.prefill.prompt_tokens == prompt);
  CHECK(r.prefill.decode_tokens == 0);
  CHECK(r.decode.decode_tokens == total_output(requests) - static_cast<int64_t>(requests.size()));
}

TEST_CASE("the iteration floor is what a lone request takes, in every kind of setup",
          "[exec][serving]") {
  const int64_t input = 512, output = 6;
  auto floor_and_run = [&](OneGpu& g) {
    const std::vector<ServingRequest> requests = {{0, input, output}};
    const IterationFloor floor = min_serving_iterations(g.setup, requests);
    const ServingResult r = simulate_serving(g.setup, requests);
    REQUIRE(r.requests[0].finished());
    CHECK(floor.iterations == r.iterations);
    return floor.iterations;
  };
  OneGpu mixed;
  CHECK(floor_and_run(mixed) == output);  // the prompt's iteration yields the first token
  OneGpu split(1 << 20, InstanceRole::kPrefill);
  split.add_instance(InstanceRole::kDecode, 1 << 20);
  split.setup.kv_transfer_seconds = [](int64_t tokens) { return tokens * 1e-6; };
  CHECK(floor_and_run(split) == output);
  OneGpu decode_only(1 << 20, InstanceRole::kDecode);
  CHECK(floor_and_run(decode_only) == output - 1);  // the first token comes with the cache
  OneGpu prefill_only(1 << 20, InstanceRole::kPrefill);
  CHECK(floor_and_run(prefill_only) == 1);
  // Chunks of 128: four prompt iterations, the last yielding the first token.
  OneGpu chunked;
  chunked.setup.config.chunked_prefill = 128;
  CHECK(floor_and_run(chunked) == 4 + output - 1);
  chunked.setup.config.max_num_tokens = 64;  // the budget cuts the chunks to 64
  CHECK(floor_and_run(chunked) == 8 + output - 1);
}

TEST_CASE("the iteration floor bounds a loaded run from below, and one at a time exactly",
          "[exec][serving]") {
  const auto requests = poisson_requests(300, 100, 16, 256, 1, 48, 5);
  OneGpu g;
  g.setup.config.max_batch_size = 8;
  const IterationFloor floor = min_serving_iterations(g.setup, requests);
  CHECK(floor.tokens == total_output(requests));
  CHECK(floor.tokens_per_iteration == 8);
  CHECK(floor.longest_request <= 48);
  const ServingResult loaded = simulate_serving(g.setup, requests);
  CHECK(floor.iterations == static_cast<uint64_t>((floor.tokens + 7) / 8));
  CHECK(floor.iterations <= loaded.iterations);
  // One request in flight at a time: every iteration yields exactly one token.
  g.setup.concurrency = 1;
  const IterationFloor serial = min_serving_iterations(g.setup, requests);
  CHECK(serial.tokens_per_iteration == 1);
  CHECK(serial.iterations == static_cast<uint64_t>(total_output(requests)));
  CHECK(simulate_serving(g.setup, requests).iterations == serial.iterations);
  // Chunked prompts one at a time: each request takes its chunks, then its
  // decodes, in a row; the floor holds the longest such run and no more.
  g.setup.config.chunked_prefill = 16;
  const IterationFloor chunked = min_serving_iterations(g.setup, requests);
  int64_t longest = 0;
  for (const ServingRequest& q : requests) {
    longest = std::max(longest, (q.input_tokens + 15) / 16 + q.output_tokens - 1);
  }
  CHECK(chunked.longest_request == longest);
  CHECK(chunked.prompt_tokens_per_iteration == 16);
  CHECK(chunked.iterations <= simulate_serving(g.setup, requests).iterations);
}

TEST_CASE("serving progress counts finished requests up to all of them, a thousandth at a time",
          "[exec][serving]") {
  const auto requests = poisson_requests(5000, 400, 16, 128, 1, 16, 9);
  OneGpu g;
  std::vector<size_t> seen;
  g.setup.progress = [&](size_t done, size_t total) {
    CHECK(total == requests.size());
    seen.push_back(done);
  };
  simulate_serving(g.setup, requests);
  REQUIRE(!seen.empty());
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  CHECK(seen.back() == requests.size());
  CHECK(seen.size() == 1000);  // every 5th of 5,000
}

}  // namespace
}  // namespace moesim::exec
