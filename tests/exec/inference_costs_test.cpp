// InferenceCostModel's pricing of FP8 serving: the LM head once per
// iteration on the whole batch, also under two-batch overlap (SGLang splits
// the decoder layers only), and in BF16 when the GEMMs are FP8 (SGLang's
// Fp8Config leaves ParallelLMHead and the MoE gate unquantized); the
// activation quantization before each FP8 GEMM.

#include <algorithm>
#include <catch2/catch.hpp>
#include <span>
#include <vector>

#include "sim/exec/inference_costs.h"
#include "tests/exec/test_costs.h"

namespace moesim::exec {
namespace {

// Records every GEMM it prices; times are linear in FLOPs.
class RecordingCost final : public testing::LinearCost {
 public:
  struct Gemm {
    int64_t m, n, k;
    hw::DType dtype;
  };
  RecordingCost() : LinearCost(1e12, 1e10) {}
  double gemm_seconds(int64_t m, int64_t n, int64_t k, hw::DType dt) const override {
    gemms.push_back({m, n, k, dt});
    return LinearCost::gemm_seconds(m, n, k, dt);
  }
  mutable std::vector<Gemm> gemms;
};

// Every rank's tokens spread evenly over 8 experts on `ep` ranks, top-2.
class SpreadRouting final : public IterationRouting {
 public:
  explicit SpreadRouting(int ep = 1) : ep_(ep) {}
  using IterationRouting::route;
  const std::vector<RoutingSample>& route(uint64_t, std::span<const int64_t> tokens,
                                          const IterationSequences&) override {
    samples_.assign(1, testing::even_routing(ep_, 8, tokens[0], 2));
    return samples_;
  }

 private:
  int ep_;
  std::vector<RoutingSample> samples_;
};

double no_collective(const coll::Collective&) {
  return 0;
}

// `sequences` decode tokens, each with `context` cached tokens, all sampled.
ReplicaBatch decode_batch(int64_t sequences, int64_t context) {
  ReplicaBatch b;
  b.decode_sequences = sequences;
  b.decode_context_tokens = sequences * context;
  b.sampled = sequences;
  return b;
}

TEST_CASE(
    "the LM head is priced once per iteration, in BF16 under FP8 GEMMs, with or without "
    "two-batch overlap",
    "[exec][serving]") {
  ModelShape shape = testing::tiny_moe(2);
  shape.vocab = 32000;
  const ReplicaBatch decode = decode_batch(64, 100);
  for (const bool overlap : {false, true}) {
    for (const hw::DType dtype : {hw::DType::kBf16, hw::DType::kFp8}) {
      INFO("two_batch_overlap " << overlap << ", fp8 " << (dtype == hw::DType::kFp8));
      InferenceParallel parallel;
      parallel.two_batch_overlap = overlap;
      RecordingCost cost;
      SpreadRouting routing;
      InferenceCostModel model(shape, parallel, dtype, hw::DType::kBf16, cost, no_collective, {0},
                               0);
      model.iteration({&decode, 1}, routing, 0);
      std::vector<RecordingCost::Gemm> heads;
      for (const RecordingCost::Gemm& g : cost.gemms) {
        if (g.n == shape.vocab) heads.push_back(g);
      }
      REQUIRE(heads.size() == 1);
      CHECK(heads[0].m == decode.sampled);
      CHECK(heads[0].k == shape.hidden);
      CHECK(heads[0].dtype == hw::DType::kBf16);
      // The router gate stays BF16 too; the attention projections follow the
      // GEMM dtype.
      for (const RecordingCost::Gemm& g : cost.gemms) {
        if (g.n == shape.experts) CHECK(g.dtype == hw::DType::kBf16);
        if (g.n == shape.hidden && g.k == shape.heads * shape.head_dim) CHECK(g.dtype == dtype);
      }
    }
  }
}

TEST_CASE("FP8 GEMMs pay one memory pass quantizing each BF16 input, closed form",
          "[exec][serving]") {
  // One GPU, the tiny model (2 MoE layers, hidden 1024, 8 heads of 128, expert
  // FFN 2048, top-2, no shared experts), BF16 dispatch behind the normal
  // kernels: per layer and token the QKV and output projections quantize
  // hidden + heads x head_dim elements, and each of the two routed copies its
  // hidden state on arrival and its expert FFN activation before the down
  // projection. GEMM times do not depend on the dtype here (LinearCost), so
  // FP8 minus BF16 is the quantization alone: 3 bytes and 4/128 of a scale
  // per element at 10 GB/s.
  const ModelShape shape = testing::tiny_moe(2);
  const ReplicaBatch decode = decode_batch(64, 100);
  auto seconds = [&](hw::DType dtype) {
    testing::LinearCost cost(1e12, 1e10);
    SpreadRouting routing;
    InferenceCostModel model(shape, InferenceParallel{}, dtype, hw::DType::kBf16, cost,
                             no_collective, {0}, 0);
    return model.iteration({&decode, 1}, routing, 0).seconds;
  };
  const double n = static_cast<double>(decode.decode_sequences);
  const double per_layer =
      n * (shape.hidden + shape.heads * shape.head_dim) + 2 * n * (shape.hidden + shape.expert_ffn);
  const double expected = shape.layers * per_layer * (3 + 4.0 / 128) / 1e10;
  CHECK(seconds(hw::DType::kFp8) - seconds(hw::DType::kBf16) == Approx(expected).epsilon(1e-9));
}

TEST_CASE("the DeepGEMM parts of a layer are its block-FP8 linear GEMMs, none in BF16",
          "[exec][serving]") {
  // The tiny model's dense layer 0 and MoE layer 1 on one GPU, 64 decode
  // tokens: the projections are QKV (1024 + 2 x 1024 wide) and output, the
  // dense FFN gate-up and down; at 1e12 FLOP/s each GEMM costs 2mnk / 1e12.
  ModelShape shape = testing::tiny_moe(2);
  shape.moe_layer = {false, true};
  shape.dense_ffn = 4096;
  const ReplicaBatch decode = decode_batch(64, 100);
  const double m = 64, h = shape.hidden, f = shape.dense_ffn;
  const double projections = 2 * m * h * (3 * h) / 1e12 + 2 * m * h * h / 1e12;
  const double dense_ffn = 2 * m * (2 * f) * h / 1e12 + 2 * m * h * f / 1e12;
  for (const hw::DType dtype : {hw::DType::kBf16, hw::DType::kFp8}) {
    testing::LinearCost cost(1e12, 1e10);
    SpreadRouting routing;
    InferenceCostModel model(shape, InferenceParallel{}, dtype, hw::DType::kBf16, cost,
                             no_collective, {0}, 0);
    const std::vector<LayerCost> parts = model.layer_parts({&decode, 1}, routing, 0)[0];
    REQUIRE(parts.size() == 2);
    const double fp8 = dtype == hw::DType::kFp8 ? 1 : 0;
    CHECK(parts[0].attention_prep_gemm == Approx(fp8 * projections));
    CHECK(parts[0].dense_gemm == Approx(fp8 * dense_ffn));
    CHECK(parts[0].dense > dense_ffn);  // the activation (and FP8 casts) besides
    CHECK(parts[1].attention_prep_gemm == Approx(fp8 * projections));
    CHECK(parts[1].shared_gemm == 0);              // no shared experts
    CHECK(parts[1].attention_prep > projections);  // norms besides
  }
}

TEST_CASE("without two-batch overlap a layer's parts run one after another, shared experts too",
          "[exec][serving]") {
  // SGLang's forward_deepep (models/deepseek_v2.py) runs the shared experts
  // before it launches the dispatch and waits for the dispatch before the
  // routed experts: on one stream nothing of the layer hides behind the
  // all-to-all, whose time (1 ms a collective here) counts whole.
  // Two GPUs, an attention replica and an EP rank each.
  ModelShape shape = testing::tiny_moe(2);
  shape.shared_ffn = 4096;
  const std::vector<ReplicaBatch> decode(2, decode_batch(64, 100));
  testing::LinearCost cost(1e12, 1e10);
  SpreadRouting routing(2);
  InferenceParallel parallel;
  parallel.attention_dp = 2;
  parallel.ep = 2;
  auto one_ms = [](const coll::Collective&) { return 1e-3; };
  InferenceCostModel model(shape, parallel, hw::DType::kBf16, hw::DType::kBf16, cost, one_ms,
                           {0, 1}, 0);
  const std::vector<LayerCost> parts = model.layer_parts(decode, routing, 0)[0];
  double dispatch = 0, combine = 0, expert = 0, shared = 0;
  for (const LayerCost& p : parts) {
    dispatch += p.dispatch;
    combine += p.combine;
    expert += p.expert + p.dense + p.shared;
    shared += p.shared;
  }
  REQUIRE(shared > 0);
  REQUIRE(dispatch > 0);
  const IterationCost it = model.iteration(decode, routing, 0);
  CHECK(it.dispatch_s == Approx(dispatch));
  CHECK(it.combine_s == Approx(combine));
  CHECK(it.expert_s == Approx(expert));
  CHECK(it.seconds ==
        Approx(it.attention_s + it.expert_s + it.dispatch_s + it.combine_s + it.other_s));
}

// Records the sequences each call says the ranks' tokens come from.
class SequenceRecorder final : public IterationRouting {
 public:
  using IterationRouting::route;
  const std::vector<RoutingSample>& route(uint64_t, std::span<const int64_t> tokens,
                                          const IterationSequences& sequences) override {
    tokens_per_rank.assign(tokens.begin(), tokens.end());
    replica.assign(sequences.replica_of_rank.begin(), sequences.replica_of_rank.end());
    count.assign(sequences.sequences_of_rank.begin(), sequences.sequences_of_rank.end());
    samples_.assign(1, testing::even_routing(4, 8, tokens[0], 2));
    return samples_;
  }
  std::vector<int64_t> tokens_per_rank, count;
  std::vector<int32_t> replica;

 private:
  std::vector<RoutingSample> samples_;
};

TEST_CASE("routing learns which replica's sequences each EP rank's tokens come from",
          "[exec][serving]") {
  // Two replicas of tp 2 on four EP ranks: each rank holds half its
  // replica's tokens, from all of that replica's sequences (prefill chunks
  // and decodes).
  const ModelShape shape = testing::tiny_moe(2);
  std::vector<ReplicaBatch> batches{decode_batch(64, 100), decode_batch(10, 100)};
  batches[1].prefill = {{300, 0}, {100, 50}};
  testing::LinearCost cost(1e12, 1e10);
  SequenceRecorder routing;
  InferenceParallel parallel;
  parallel.tp = 2;
  parallel.attention_dp = 2;
  parallel.ep = 4;
  InferenceCostModel model(shape, parallel, hw::DType::kBf16, hw::DType::kBf16, cost, no_collective,
                           {0, 1, 2, 3}, 0);
  model.iteration(batches, routing, 0);
  CHECK(routing.tokens_per_rank == std::vector<int64_t>{32, 32, 205, 205});
  CHECK(routing.replica == std::vector<int32_t>{0, 0, 1, 1});
  CHECK(routing.count == std::vector<int64_t>{64, 64, 12, 12});
}

// Records the attention-core kernels it prices.
class AttentionKernels final : public testing::LinearCost {
 public:
  struct Call {
    double flops, bytes;
    hw::DType dtype;
  };
  AttentionKernels() : LinearCost(1e12, 1e10) {}
  double fused_kernel_seconds(double flops, double bytes, hw::DType dt) const override {
    if (flops > 0) fused.push_back({flops, bytes, dt});
    return LinearCost::fused_kernel_seconds(flops, bytes, dt);
  }
  double mla_decode_seconds(double flops, double bytes, hw::DType dt) const override {
    mla_decode.push_back({flops, bytes, dt});
    return 0;
  }
  mutable std::vector<Call> fused, mla_decode;
};

TEST_CASE("MLA decode attention is its own kernel, priced apart from prefill chunks",
          "[exec][serving]") {
  // DeepSeek-V3's attention geometry on the tiny model: 8 heads, latent 512,
  // RoPE key 64, no-RoPE 128, value 128. Decode reads each cached token's
  // 576-element latent once and does 2 x heads x (512 + 64 + 512) FLOPs on it
  // (FlashMLA's MQA form); a prefill chunk of the same iteration attends per
  // head in the up-projected form, in a kernel of its own.
  const ModelShape shape = testing::tiny_mla(2);
  ReplicaBatch batch = decode_batch(64, 100);
  for (const bool with_prefill : {false, true}) {
    INFO("prefill chunk beside the decode tokens: " << with_prefill);
    if (with_prefill) batch.prefill = {{512, 0}};
    AttentionKernels cost;
    SpreadRouting routing;
    InferenceCostModel model(shape, InferenceParallel{}, hw::DType::kFp8, hw::DType::kBf16, cost,
                             no_collective, {0}, 0);
    model.iteration({&batch, 1}, routing, 0);
    REQUIRE_FALSE(cost.mla_decode.empty());
    const double ctx = static_cast<double>(batch.decode_context_tokens);
    for (const AttentionKernels::Call& c : cost.mla_decode) {
      CHECK(c.flops == Approx(2.0 * ctx * 8 * (512 + 64 + 512)));
      CHECK(c.bytes == Approx(ctx * 576 * 2));
      CHECK(c.dtype == hw::DType::kBf16);  // the KV cache's dtype
    }
    // Prefill: causal over 512 new tokens, 8 heads of (128 + 64) + 128, in
    // BF16 up-projected tensors (queries, keys and values read, outputs
    // written), so its intensity reads as FlashAttention's 512-token causal
    // forward: flops / bytes = seq_len / (2 x 2 bytes).
    const double prefill_flops = 2.0 * 512 * 256 * 8 * (128 + 64 + 128);
    const double prefill_bytes = 8 * 2.0 * (512 * 320 + 512 * 320);
    CHECK(cost.fused.size() == (with_prefill ? cost.mla_decode.size() : 0));
    for (const AttentionKernels::Call& c : cost.fused) {
      CHECK(c.flops == Approx(prefill_flops));
      CHECK(c.bytes == Approx(prefill_bytes));
      CHECK(2 * 2 * c.flops / c.bytes == Approx(512));
    }
  }
}

// Prefill chunks are attention kernels of their own shape (the model's head
// dim, reaching the chunk's context and its own tokens), summed as one varlen
// launch; decode tokens are a fused kernel of their own.
class ShapedAttention final : public testing::LinearCost {
 public:
  ShapedAttention() : LinearCost(1e12, 1e10) {}
  double attention_seconds(const hw::AttentionKernel& k) const override {
    kernels.push_back(k);
    return k.flops / 1e12;
  }
  double fused_kernel_seconds(double flops, double bytes, hw::DType dt) const override {
    if (flops > 0) fused.push_back(flops);
    return LinearCost::fused_kernel_seconds(flops, bytes, dt);
  }
  mutable std::vector<hw::AttentionKernel> kernels;
  mutable std::vector<double> fused;
};

TEST_CASE("serving prefill chunks are attention kernels of their own shape", "[exec][serving]") {
  ModelShape shape = testing::tiny_moe(1);
  shape.head_dim = 64;
  ReplicaBatch batch = decode_batch(16, 100);
  batch.prefill = {{512, 256}, {128, 0}};
  ShapedAttention cost;
  SpreadRouting routing;
  InferenceCostModel model(shape, InferenceParallel{}, hw::DType::kBf16, hw::DType::kBf16, cost,
                           no_collective, {0}, 0);
  model.iteration({&batch, 1}, routing, 0);
  REQUIRE(cost.kernels.size() == 2);
  const hw::AttentionKernel &a = cost.kernels[0], &b = cost.kernels[1];
  CHECK((a.head_dim == 64 && a.span == 768 && a.causal && b.span == 128));
  CHECK(a.pass == hw::AttentionKernel::Pass::kForward);
  // 4 x tokens x (context + tokens / 2) x heads x head_dim.
  CHECK(a.flops == Approx(4.0 * 512 * (256 + 256) * shape.heads * 64));
  CHECK(b.flops == Approx(4.0 * 128 * 64 * shape.heads * 64));
  // Decode: 4 x context x heads x head_dim, apart.
  REQUIRE(cost.fused.size() == 1);
  CHECK(cost.fused[0] == Approx(4.0 * 16 * 100 * shape.heads * 64));
}

TEST_CASE("windowed layers attend through their window, prefill and decode", "[exec][serving]") {
  // Two layers, layer 0 sliding over 128 keys (gpt-oss's), layer 1 full. A
  // chunk of 512 after 256 cached tokens: on the full layer its queries
  // reach 256 + 256 keys on average and up to 768; on the windowed one every
  // query reaches 128 (the context already fills the window). A chunk of
  // 128 from the start ramps up to the window: 128 x 64 keys either way.
  // Decode: 16 sequences of 1,000 cached tokens read 128 each there.
  ModelShape shape = testing::tiny_moe(2);
  shape.head_dim = 64;
  shape.windowed_layer = {true, false};
  shape.windowed_layers = 1;
  shape.window_tokens = 128;
  ReplicaBatch batch;
  for (int i = 0; i < 16; ++i) batch.add_decode(shape, 1000);
  batch.sampled = 16;
  CHECK(batch.decode_context_tokens == 16000);
  CHECK(batch.decode_window_keys == 16 * 128);
  batch.prefill = {{512, 256}, {128, 0}};
  ShapedAttention cost;
  SpreadRouting routing;
  InferenceCostModel model(shape, InferenceParallel{}, hw::DType::kBf16, hw::DType::kBf16, cost,
                           no_collective, {0}, 0);
  const std::vector<LayerCost> parts = model.layer_parts({&batch, 1}, routing, 0)[0];
  REQUIRE(cost.kernels.size() == 4);  // the full layer's two chunks, then the windowed layer's
  const double per_key = 4.0 * shape.heads * 64;
  CHECK(cost.kernels[0].span == 768);
  CHECK(cost.kernels[0].flops == Approx(per_key * 512 * (256 + 256)));
  CHECK(cost.kernels[2].span == 128);
  CHECK(cost.kernels[2].flops == Approx(per_key * 512 * 128));
  CHECK(cost.kernels[3].span == 128);
  CHECK(cost.kernels[3].flops == Approx(per_key * 128 * 64));
  CHECK(cost.kernels[1].flops == Approx(cost.kernels[3].flops));
  REQUIRE(cost.fused.size() == 2);
  CHECK(cost.fused[0] == Approx(per_key * 16000));
  CHECK(cost.fused[1] == Approx(per_key * 16 * 128));
  CHECK(parts[0].attention_core < parts[1].attention_core);
  CHECK(parts[0].attention_prep == parts[1].attention_prep);
}

TEST_CASE("windowed keys: sliding and chunked windows in closed form", "[exec][serving]") {
  ModelShape shape;
  shape.windowed_layer = {true};
  shape.windowed_layers = 1;
  shape.window_tokens = 100;
  // Inside the window: full attention's count, n (c + n / 2).
  CHECK(shape.windowed_keys(10, 60) == Approx(60 * (10 + 30)));
  // Past it: n x window; across its edge: the ramp's area then the plateau.
  CHECK(shape.windowed_keys(300, 50) == Approx(50 * 100));
  CHECK(shape.windowed_keys(50, 100) == Approx((100.0 * 100 - 50 * 50) / 2 + 100 * 50));
  CHECK(shape.windowed_cached_keys(40) == 40);
  CHECK(shape.windowed_cached_keys(4000) == 100);
  // Chunked (Llama 4): x mod 100, across two chunk boundaries.
  shape.window_chunked = true;
  CHECK(shape.windowed_keys(150, 200) ==
        Approx((100.0 * 100 - 50 * 50) / 2 + 100.0 * 100 / 2 + 50.0 * 50 / 2));
  CHECK(shape.windowed_cached_keys(4050) == 50);
  // Ending on a chunk boundary, and many whole chunks (no loop over them).
  CHECK(shape.windowed_keys(150, 150) == Approx((100.0 * 100 - 50 * 50) / 2 + 100.0 * 100 / 2));
  CHECK(shape.windowed_keys(0, 100000000) == Approx(1e6 * 100.0 * 100 / 2));
  CHECK(shape.windowed_keys(120, 0) == 0);
}

TEST_CASE("KV blocks: windowed layers keep their window's blocks only, within the bound",
          "[exec][serving][kv]") {
  // Two layers, one windowed, blocks of 64 tokens. Decoding position 1,000:
  // the full layer holds blocks 0-15 (16); a 128-token sliding window starts
  // at 873, so block 13 on (3); (16 + 3) / 2 rounds up to 10. A 256-token
  // chunk starts at 768: blocks 12-15 (4), 10 in all. The first prompt
  // computed whole holds every block on both.
  ModelShape shape = testing::tiny_moe(2);
  CHECK(shape.kv_blocks(1000, 1001, 64) == 16);  // no window
  shape.windowed_layer = {true, false};
  shape.windowed_layers = 1;
  shape.window_tokens = 128;
  CHECK(shape.kv_blocks(1000, 1001, 64) == 10);
  CHECK(shape.kv_blocks(0, 1000, 64) == 16);
  shape.window_chunked = true;
  shape.window_tokens = 256;
  CHECK(shape.kv_blocks(1000, 1001, 64) == 10);
  // What a swap or a transfer moves of a 1,000-token sequence, per layer on
  // average: (1,000 + 128) / 2 sliding over 128, (1,000 + 232) / 2 chunked
  // by 256 (its last chunk starts at 768).
  shape.window_chunked = false;
  shape.window_tokens = 128;
  CHECK(shape.kv_cached_tokens(1000) == Approx(564));
  shape.window_chunked = true;
  shape.window_tokens = 256;
  CHECK(shape.kv_cached_tokens(1000) == Approx(616));
  CHECK(testing::tiny_moe(2).kv_cached_tokens(1000) == 1000);
  // max_kv_blocks bounds every step the scheduler can take, both kinds.
  int64_t over = 0, checked = 0;
  for (const bool chunked : {false, true}) {
    shape.window_chunked = chunked;
    for (const int64_t step : {1, 7, 64, 100}) {
      for (int64_t to = 1; to <= 600; ++to) {
        const int64_t bound = shape.max_kv_blocks(to, step, 16);
        for (int64_t from = std::max<int64_t>(0, to - step); from < to; ++from) {
          for (int64_t end = from + 1; end <= to; ++end, ++checked) {
            over += shape.kv_blocks(from, end, 16) > bound ? 1 : 0;
          }
        }
      }
    }
  }
  CHECK(checked > 1000000);
  CHECK(over == 0);
}

// Records the bytes of every memory-bound kernel it prices.
class MemoryPasses final : public testing::LinearCost {
 public:
  MemoryPasses() : LinearCost(1e12, 1e10) {}
  double memory_bound_seconds(double bytes) const override {
    passes.push_back(bytes);
    return LinearCost::memory_bound_seconds(bytes);
  }
  mutable std::vector<double> passes;
};

TEST_CASE("MLA prefill pays for assembling the per-head queries and keys it attends with",
          "[exec][serving]") {
  // SGLang's forward_normal: RoPE reads and writes q_pe (heads x 64), copies
  // it back into q, copies k_nope (heads x 128) into k and broadcasts k_pe
  // into every head: heads x (2*64 + 2*64 + 2*128 + 64) BF16 elements per
  // prompt token and layer. Decode tokens (absorbed) pay none.
  const ModelShape shape = testing::tiny_mla(2);
  const double assembly = 512.0 * 8 * (2 * 64 + 2 * 64 + 2 * 128 + 64) * 2;
  auto passes_of = [&](const ReplicaBatch& batch) {
    MemoryPasses cost;
    SpreadRouting routing;
    InferenceCostModel model(shape, InferenceParallel{}, hw::DType::kBf16, hw::DType::kBf16, cost,
                             no_collective, {0}, 0);
    model.iteration({&batch, 1}, routing, 0);
    return static_cast<int>(std::count(cost.passes.begin(), cost.passes.end(), assembly));
  };
  ReplicaBatch prefill;
  prefill.prefill = {{512, 0}};
  prefill.sampled = 1;
  CHECK(passes_of(prefill) == 1);  // priced once, the same in every layer
  CHECK(passes_of(decode_batch(512, 100)) == 0);
}

TEST_CASE("an MLA chunk that continues a prompt expands its cached context again",
          "[exec][serving]") {
  // vLLM's _compute_prefill_context / SGLang's forward_normal_chunked_kv:
  // kv_b_proj over the 1,024 cached tokens (m = 1024, n = heads x (128 +
  // 128), k = latent 512), their keys assembled, and the two partial
  // attention outputs merged. A first chunk (no context) has none of it.
  const ModelShape shape = testing::tiny_mla(1);
  auto run = [&](int64_t context, RecordingCost& gemms, MemoryPasses& passes) {
    ReplicaBatch batch;
    batch.prefill = {{512, context}};
    SpreadRouting routing;
    InferenceCostModel a(shape, InferenceParallel{}, hw::DType::kBf16, hw::DType::kBf16, gemms,
                         no_collective, {0}, 0);
    a.iteration({&batch, 1}, routing, 0);
    InferenceCostModel b(shape, InferenceParallel{}, hw::DType::kBf16, hw::DType::kBf16, passes,
                         no_collective, {0}, 0);
    b.iteration({&batch, 1}, routing, 0);
  };
  auto context_expansions = [&](const RecordingCost& c) {
    return std::count_if(c.gemms.begin(), c.gemms.end(), [](const RecordingCost::Gemm& g) {
      return g.m == 1024 && g.n == 8 * 256 && g.k == 512;
    });
  };
  const double merge = 3.0 * 512 * 8 * 128 * 2;
  const double assembly = 1024.0 * 8 * (2 * 128 + 64) * 2;
  RecordingCost first_gemms, next_gemms;
  MemoryPasses first_passes, next_passes;
  run(0, first_gemms, first_passes);
  run(1024, next_gemms, next_passes);
  CHECK(context_expansions(first_gemms) == 0);
  CHECK(context_expansions(next_gemms) == 1);
  CHECK(std::count(first_passes.passes.begin(), first_passes.passes.end(), merge) == 0);
  CHECK(std::count(next_passes.passes.begin(), next_passes.passes.end(), merge) == 1);
  CHECK(std::count(next_passes.passes.begin(), next_passes.passes.end(), assembly) == 1);
}

}  // namespace
}  // namespace moesim::exec
