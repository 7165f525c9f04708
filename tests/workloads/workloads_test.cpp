#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <set>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "sim/core/error.h"
#include "workloads/gating.h"
#include "workloads/model_config.h"
#include "workloads/routing_generator.h"
#include "workloads/routing_stats.h"
#include "workloads/trace_file.h"

namespace moesim::workloads {
namespace {

MoeModelConfig model(const std::string& name) {
  return resolve_model(Json(name), "model");
}

TEST_CASE("catalog totals match the published parameter counts within 2%", "[workloads][catalog]") {
  for (const auto& e : list_models()) {
    const MoeModelConfig m = model(e.name);
    INFO(e.name << ": total " << m.total_params() / 1e9 << "B, active " << m.active_params() / 1e9);
    if (m.published_total_params > 0 && !m.published_approximate) {
      CHECK(m.total_params() == Approx(m.published_total_params).epsilon(0.02));
    }
    if (m.published_active_params > 0) {
      const double active =
          m.active_params() - (m.published_active_excludes_embedding ? m.embedding_params() : 0);
      CHECK(active == Approx(m.published_active_params).epsilon(0.02));
    }
    CHECK(m.flops_per_token(4096) > 2 * (m.active_params() - m.embedding_params()));
  }
  // DeepSeek-V3 technical report: 671B total, 37B activated.
  CHECK(model("deepseek-v3").moe_layer_count() == 58);
  CHECK(model("switch-base-128").moe_layer_count() == 12);
}

std::vector<int> moe_layers_of(const MoeModelConfig& m) {
  std::vector<int> out;
  for (int l = 0; l < m.layers; ++l) {
    if (m.is_moe_layer(l)) out.push_back(l);
  }
  return out;
}

TEST_CASE("serving models place their MoE layers as their configs do", "[workloads][catalog]") {
  // Llama 4 Maverick: interleave_moe_layer_step 2 -> moe_layers 1, 3, ..., 47
  // (transformers: range(step - 1, layers, step)).
  std::vector<int> odd;
  for (int l = 1; l < 48; l += 2) odd.push_back(l);
  CHECK(moe_layers_of(model("llama-4-maverick")) == odd);
  // Kimi K2: first_k_dense_replace 1, moe_layer_freq 1 -> layers 1..60.
  const auto kimi = model("kimi-k2");
  CHECK(!kimi.is_moe_layer(0));
  CHECK(kimi.moe_layer_count() == 60);
  CHECK(model("qwen3-30b-a3b").moe_layer_count() == 48);
  CHECK(model("gpt-oss-120b").moe_layer_count() == 36);
  CHECK(model("llama-4-scout").moe_layer_count() == 48);
}

TEST_CASE("windowed layers: gpt-oss alternates sliding and full, Llama 4 is full every 4th",
          "[workloads][catalog][kv]") {
  const auto oss = model("gpt-oss-120b");
  CHECK(oss.window == AttentionWindow::kSliding);
  CHECK(oss.is_windowed_layer(0));  // layer_types starts with sliding_attention
  CHECK(!oss.is_windowed_layer(1));
  CHECK(oss.is_windowed_layer(34));
  CHECK(!oss.is_windowed_layer(35));
  CHECK(oss.windowed_layer_count() == 18);
  const auto maverick = model("llama-4-maverick");
  CHECK(maverick.window == AttentionWindow::kChunked);
  std::vector<int> full;
  for (int l = 0; l < maverick.layers; ++l) {
    if (!maverick.is_windowed_layer(l)) full.push_back(l);
  }
  CHECK(full == std::vector<int>{3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47});  // NoPE layers
  CHECK(maverick.windowed_layer_count() == 36);
  CHECK(model("mixtral-8x7b").windowed_layer_count() == 0);
  CHECK(!model("mixtral-8x7b").is_windowed_layer(0));
}

TEST_CASE("KV cache per token and per sequence follow the attention geometry",
          "[workloads][catalog][kv]") {
  // GQA: 2 x kv_heads x head_dim per layer. Mixtral-8x7B: 2 x 8 x 128 x 32
  // layers x 2 bytes = 128 KiB per token.
  const auto mixtral = model("mixtral-8x7b");
  CHECK(mixtral.kv_elements_per_token_per_layer() == 2048);
  CHECK(mixtral.kv_bytes_per_token(2) == 131072);
  CHECK(mixtral.kv_cache_bytes(1000, 2) == 1000 * 131072.0);
  CHECK(mixtral.kv_cache_tokens(31, 5000) == 5000);
  // MLA: kv_lora_rank + qk_rope_head_dim = 576 per layer for all heads;
  // DeepSeek-V3 in bf16: 61 x 576 x 2 = 70,272 bytes (~70 KB) per token.
  const auto v3 = model("deepseek-v3");
  CHECK(v3.kv_elements_per_token_per_layer() == 576);
  CHECK(v3.kv_bytes_per_token(2) == 70272);
  CHECK(v3.kv_bytes_per_token(1) == 35136);  // fp8 cache
  // gpt-oss-120b: sliding layers keep the last 128 tokens, full ones all.
  const auto oss = model("gpt-oss-120b");
  CHECK(oss.kv_elements_per_token_per_layer() == 1024);
  CHECK(oss.kv_cache_tokens(0, 100) == 100);
  CHECK(oss.kv_cache_tokens(0, 128) == 128);
  CHECK(oss.kv_cache_tokens(0, 129) == 128);
  CHECK(oss.kv_cache_tokens(1, 129) == 129);
  CHECK(oss.kv_cache_bytes(10000, 2) == (18 * 10000.0 + 18 * 128.0) * 1024 * 2);
  // Llama 4 chunks of 8192: a token sees its own chunk only.
  const auto maverick = model("llama-4-maverick");
  CHECK(maverick.kv_cache_tokens(0, 8192) == 8192);
  CHECK(maverick.kv_cache_tokens(0, 8193) == 1);
  CHECK(maverick.kv_cache_tokens(0, 20000) == 20000 - 16384);
  CHECK(maverick.kv_cache_tokens(3, 20000) == 20000);
  // The closed form of kv_cache_bytes is the sum over layers, at every edge.
  for (const char* name : {"gpt-oss-120b", "llama-4-maverick", "kimi-k2", "qwen3-30b-a3b"}) {
    const auto m = model(name);
    for (int64_t context : {int64_t{0}, int64_t{1}, int64_t{127}, int64_t{128}, int64_t{129},
                            int64_t{8191}, int64_t{8192}, int64_t{8193}, int64_t{100000}}) {
      double tokens = 0;
      for (int l = 0; l < m.layers; ++l)
        tokens += static_cast<double>(m.kv_cache_tokens(l, context));
      INFO(name << " context " << context);
      CHECK(m.kv_cache_bytes(context, 2) == tokens * m.kv_elements_per_token_per_layer() * 2);
      CHECK(m.kv_cache_bytes(context, 2) <= context * m.kv_bytes_per_token(2));
    }
  }
}

TEST_CASE("windowed attention FLOPs use the keys a query reaches", "[workloads][catalog]") {
  const auto oss = model("gpt-oss-120b");
  // Sliding 128 at 4096 tokens: 128 - 128^2 / (2 x 4096) = 126 keys on average.
  CHECK(oss.mean_attended_tokens(4096) == Approx(126.0));
  CHECK(oss.mean_attended_tokens(100) == Approx(50.0));  // inside the window: L / 2
  // Chunks of 8192 at 20,000 tokens: (2 x 8192^2 + 3616^2) / (2 x 20000).
  CHECK(model("llama-4-maverick").mean_attended_tokens(20000) ==
        Approx((2.0 * 8192 * 8192 + 3616.0 * 3616) / 40000));
  // Removing the window adds (seq/2 - 126) keys on each of the 18 sliding layers.
  auto full = oss;
  full.window = AttentionWindow::kNone;
  const double per_key = 2.0 * oss.heads * (oss.qk_head_dim() + oss.v_dim());
  CHECK(full.flops_per_token(4096) - oss.flops_per_token(4096) ==
        Approx(18 * per_key * (2048 - 126.0)));
}

// A hand-sized MoE model with one MTP module: hidden 8, MHA with 2 heads of
// 4, 4 experts of width 16 (top-2, SwiGLU), vocab 32, 2 layers, both MoE.
// Its module: attention 4 x 8 x 8 = 256 and 2 norms of 8, experts 4 x 3 x 8
// x 16 = 1,536, router 32, eh_proj 2 x 8 x 8 = 128, 3 norms of 8.
TEST_CASE("an MTP module's parameters and FLOPs, closed form", "[workloads][catalog]") {
  const Json tiny = Json::parse(R"({"layers": 2, "hidden": 8,
      "attention": {"kind": "mha", "heads": 2, "head_dim": 4}, "routed_experts": 4,
      "expert_ffn": 16, "top_k": 2, "vocab": 32, "moe_layers": {}, "mtp_layers": 1,
      "sources": {}})");
  const MoeModelConfig m = resolve_model(tiny, "model");
  CHECK(m.mtp_params() == 256 + 16 + 1536 + 32 + 128 + 24);
  CHECK(m.is_moe_layer(2));  // the module's layer is of the last layer's kind
  // Per token: 2 x (attention 256 + 2 experts x 384 + router 32 + eh_proj
  // 128 + head 8 x 32) = 2,880, plus 2 heads x (4 + 4) x 2 FLOPs per key
  // over 64 / 2 keys = 1,024.
  CHECK(m.mtp_flops_per_token(64) == Approx(2880 + 1024));
  // The published counts leave the modules out; so do total and active.
  MoeModelConfig without = m;
  without.mtp_layers = 0;
  CHECK(m.total_params() == without.total_params());
  CHECK(without.mtp_flops_per_token(64) == 0);
  // DeepSeek-V3's module: 256 experts of 3 x 7168 x 2048, the MLA block,
  // the router and eh_proj come to about 11.7B; with its own copies of the
  // embedding and head (0.93B each) that is the model card's 14B.
  const MoeModelConfig v3 = model("deepseek-v3");
  CHECK(v3.mtp_layers == 1);
  CHECK((v3.mtp_params() + 2 * v3.embedding_params()) / 1e9 == Approx(14).epsilon(0.05));
  CHECK_THROWS_WITH(resolve_model(Json{{"preset", "tiny-moe"}, {"mtp_layers", 9}}, "model"),
                    Catch::Contains("model.mtp_layers"));
}

TEST_CASE("weight bytes: MXFP4 experts reproduce gpt-oss's checkpoint sizes",
          "[workloads][catalog]") {
  // gpt-oss model card: checkpoints of 60.8 GiB (120b) and 12.8 GiB (20b)
  // with MoE weights at 4.25 bits and the rest in bf16.
  const double gib = 1024.0 * 1024 * 1024;
  CHECK(model("gpt-oss-120b").weight_bytes() / gib == Approx(60.8).epsilon(0.02));
  CHECK(model("gpt-oss-20b").weight_bytes() / gib == Approx(12.8).epsilon(0.02));
  CHECK(model("gpt-oss-120b").routed_expert_weight_bits() == 4.25);
  const auto mixtral = model("mixtral-8x7b");
  CHECK(mixtral.routed_expert_weight_bits() == 16);
  CHECK(mixtral.weight_bytes() == Approx(2 * mixtral.total_params()));
}

TEST_CASE("catalog entries round-trip through catalog_entry_json", "[workloads][catalog]") {
  for (const auto& e : list_models()) {
    const MoeModelConfig m = model(e.name);
    const Json written = parse_json(catalog_entry_json(m, Json{{"config", "test"}}).dump(), e.name);
    INFO(e.name);
    CHECK(resolve_model(written, "model") == m);
  }
}

TEST_CASE("window and expert-format fields are validated", "[workloads][catalog]") {
  const auto with = [](Json patch) {
    Json v{{"preset", "gpt-oss-20b"}};
    merge_json_into(v, patch);
    return resolve_model(v, "model");
  };
  CHECK(with(Json{{"attention", {{"window", {{"full_every", 0}}}}}}).windowed_layer_count() == 24);
  CHECK_THROWS_WITH(with(Json{{"attention", {{"window", {{"full_every", 1}}}}}}),
                    Catch::Contains("model.attention.window.full_every: 1 would give"));
  CHECK_THROWS_WITH(with(Json{{"attention", {{"window", {{"full_every", 25}}}}}}),
                    Catch::Contains("model.attention.window.full_every"));
  CHECK_THROWS_WITH(with(Json{{"attention", {{"window", {{"kind", "local"}}}}}}),
                    Catch::Contains("model.attention.window.kind"));
  CHECK_THROWS_WITH(with(Json{{"attention", {{"window", {{"tokens", 0}}}}}}),
                    Catch::Contains("model.attention.window.tokens"));
  CHECK_THROWS_WITH(with(Json{{"attention", {{"window", {{"size", 4}}}}}}),
                    Catch::Contains("model.attention.window.size: unknown field"));
  CHECK_THROWS_WITH(with(Json{{"expert_weight_bits", 0.5}}),
                    Catch::Contains("model.expert_weight_bits"));
  CHECK_THROWS_WITH(with(Json{{"expert_weight_bits", 33}}),
                    Catch::Contains("model.expert_weight_bits"));
  CHECK_THROWS_WITH(with(Json{{"published", {{"active_excludes_embedding", 1}}}}),
                    Catch::Contains("model.published.active_excludes_embedding"));
}

TEST_CASE("model overrides and bad fields", "[workloads][catalog]") {
  const auto m = resolve_model(Json{{"preset", "mixtral-8x7b"}, {"layers", 16}}, "model");
  CHECK(m.layers == 16);
  CHECK(m.total_params() < model("mixtral-8x7b").total_params() / 1.9);
  CHECK_THROWS_WITH(resolve_model(Json("mixtral-9x9b"), "model"),
                    Catch::Contains("unknown model 'mixtral-9x9b'"));
  CHECK_THROWS_WITH(resolve_model(Json{{"preset", "tiny-moe"}, {"top_k", 99}}, "model"),
                    Catch::Contains("model.top_k"));
  CHECK_THROWS_WITH(resolve_model(Json{{"preset", "tiny-moe"}, {"layrs", 2}}, "model"),
                    Catch::Contains("model.layrs: unknown field"));
  // head_dim defaults to hidden / heads, which is 0 when hidden < heads.
  const Json narrow = Json::parse(R"({"layers": 2, "hidden": 2, "routed_experts": 4, "top_k": 1,
      "attention": {"kind": "gqa", "heads": 4}, "moe_layers": {}, "vocab": 16, "sources": {}})");
  CHECK_THROWS_WITH(resolve_model(narrow, "model"),
                    Catch::Contains("model.attention.head_dim: required: hidden (2) is smaller "
                                    "than heads (4)"));
  Json given = narrow;
  given["attention"]["head_dim"] = 8;
  CHECK(resolve_model(given, "model").head_dim == 8);
}

RoutingBatch gen(const std::string& spec, uint64_t seed, int64_t tokens = 20000, int step = 0,
                 int layer = 0, const std::string& name = "olmoe-1b-7b") {
  const auto g = make_generator(spec, model(name), seed, "gen");
  RoutingBatch b;
  const std::vector<int64_t> per_rank{tokens / 2, tokens - tokens / 2};
  g->generate(step, layer, per_rank, b);
  return b;
}

TEST_CASE("generators are deterministic per seed, distinct experts per token",
          "[workloads][generators]") {
  for (const std::string spec :
       {"uniform", "zipf:1.2", "dirichlet:0.5", "token_id:1.1", "drift:1.0:0.3",
        "correlated:1.0:0.8", "grouped:0.5:0.3:0.2", "sequence:0.9"}) {
    INFO(spec);
    const RoutingBatch a = gen(spec, 7), b = gen(spec, 7), c = gen(spec, 8);
    CHECK(a.expert == b.expert);
    CHECK(a.weight == b.weight);
    CHECK(a.expert != c.expert);
    for (int64_t t = 0; t < a.tokens; ++t) {
      std::set<int> s(a.expert.begin() + t * a.top_k, a.expert.begin() + (t + 1) * a.top_k);
      REQUIRE(static_cast<int>(s.size()) == a.top_k);
      float sum = 0;
      for (int k = 0; k < a.top_k; ++k) sum += a.weight[t * a.top_k + k];
      REQUIRE(sum == Approx(1.0f).epsilon(1e-5));
    }
  }
  CHECK_THROWS_WITH(make_generator("zipf", model("tiny-moe"), 1, "routing.generator"),
                    Catch::Contains("routing.generator"));
  CHECK_THROWS_WITH(make_generator("zipff:1", model("tiny-moe"), 1, "routing.generator"),
                    Catch::Contains("unknown routing generator"));
}

double chi_square_vs_uniform(const RoutingBatch& b) {
  std::vector<double> n(b.experts, 0);
  for (int32_t e : b.expert) ++n[e];
  const double expect = static_cast<double>(b.expert.size()) / b.experts;
  double chi = 0;
  for (double x : n) chi += (x - expect) * (x - expect) / expect;
  return chi;
}

TEST_CASE("zipf with exponent 0 is uniform in distribution (chi-square)",
          "[workloads][generators]") {
  // 63 degrees of freedom: the 99.9% quantile of chi-square(63) is ~103.4.
  CHECK(chi_square_vs_uniform(gen("zipf:0", 3, 100000)) < 103.4);
  CHECK(chi_square_vs_uniform(gen("uniform", 3, 100000)) < 103.4);
  CHECK(chi_square_vs_uniform(gen("zipf:1.0", 3, 100000)) > 1000);
}

TEST_CASE("grouped: group weights 1/rank^G, experts inside 1/rank^S, closed form",
          "[workloads][generators]") {
  // DeepSeek-V3: 8 router groups of 32 experts. Sorted, the groups' shares
  // are proportional to 1/(g+1)^G and each group's experts to 1/(r+1)^S.
  const auto m = model("deepseek-v3");
  REQUIRE(m.router_groups == 8);
  const double exponent = 0.5, group_exponent = 0.3;
  const auto g = make_generator("grouped:0.5:0.3", m, 3, "gen");
  double norm = 0;
  for (int r = 0; r < 8; ++r) norm += std::pow(r + 1.0, -group_exponent);
  double within = 0;
  for (int r = 0; r < 32; ++r) within += std::pow(r + 1.0, -exponent);
  for (int layer = 0; layer < 3; ++layer) {
    const std::vector<double> p = g->popularity(0, layer);
    std::vector<double> groups(8, 0);
    for (int e = 0; e < 256; ++e) groups[e / 32] += p[e];
    std::sort(groups.rbegin(), groups.rend());
    for (int r = 0; r < 8; ++r)
      CHECK(groups[r] == Approx(std::pow(r + 1.0, -group_exponent) / norm));
    // The heaviest group's experts, sorted.
    const int heaviest = static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin()) / 32;
    std::vector<double> experts(p.begin() + heaviest * 32, p.begin() + (heaviest + 1) * 32);
    std::sort(experts.rbegin(), experts.rend());
    for (int r = 0; r < 32; ++r) {
      CHECK(experts[r] == Approx(groups[0] * std::pow(r + 1.0, -exponent) / within));
    }
  }
  CHECK_THROWS_WITH(make_generator("grouped:0.5", m, 1, "routing.generator"),
                    Catch::Contains("routing.generator"));
  CHECK_THROWS_WITH(make_generator("grouped:0.5:0.3:x", m, 1, "routing.generator"),
                    Catch::Contains("the spread V"));
}

TEST_CASE("grouped with a spread: each batch departs from the mean, which stays the popularity",
          "[workloads][generators]") {
  // Top-1 (no redraws), 64 experts: without a spread a batch of 200,000
  // tokens scatters by sampling noise alone (chi-square against the
  // popularity ~ 63, its 99.9% quantile 103.4); with V = 0.2 every batch also
  // carries its own preferences (relative spread about 0.2 per expert:
  // chi-square in the thousands), while popularity() is the same long-run
  // mean either way.
  const auto m = resolve_model(Json{{"preset", "olmoe-1b-7b"}, {"top_k", 1}}, "model");
  const auto still = make_generator("grouped:0.5:0.3", m, 4, "gen");
  const auto moving = make_generator("grouped:0.5:0.3:0.2", m, 4, "gen");
  CHECK(still->popularity(0, 0) == moving->popularity(0, 0));
  auto chi_square = [&](const RoutingGenerator& g, int step) {
    RoutingBatch b;
    const std::vector<int64_t> tokens{200000};
    g.generate(step, 0, tokens, b);
    const std::vector<double> p = g.popularity(step, 0);
    std::vector<double> n(b.experts, 0);
    for (int32_t e : b.expert) ++n[e];
    double chi = 0;
    for (int e = 0; e < b.experts; ++e) {
      const double expect = p[e] * static_cast<double>(b.expert.size());
      chi += (n[e] - expect) * (n[e] - expect) / expect;
    }
    return chi;
  };
  for (int step = 0; step < 3; ++step) {
    CHECK(chi_square(*still, step) < 103.4);
    CHECK(chi_square(*moving, step) > 1000);
  }
}

TEST_CASE("sequence: one sequence is skewed 1/rank^S, many balance, a group shares its own",
          "[workloads][generators]") {
  // Top-1 (no redraws), 64 experts, S = 1: one sequence's hottest expert
  // takes 1 / H of its tokens, H = sum over r of 1/(r+1) = 4.74 for 64, i.e.
  // 13.5x the mean; 1,000 sequences of 200 tokens each, every one in its own
  // order, add up to nearly the mean everywhere (the corpus is balanced).
  const auto m = resolve_model(Json{{"preset", "olmoe-1b-7b"}, {"top_k", 1}}, "model");
  const auto g = make_generator("sequence:1.0", m, 5, "gen");
  CHECK(generator_reads_sequences("sequence:1.0"));
  CHECK_FALSE(generator_reads_sequences("zipf:1.0"));
  for (double p : g->popularity(0, 0)) CHECK(p == Approx(1.0 / 64));
  double harmonic = 0;
  for (int r = 0; r < 64; ++r) harmonic += 1.0 / (r + 1);
  auto max_over_mean = [](const RoutingBatch& b, int32_t source) {
    std::vector<double> n(b.experts, 0);
    double total = 0;
    for (int64_t t = 0; t < b.tokens; ++t) {
      if (source >= 0 && b.source_rank[t] != source) continue;
      ++n[b.expert[t]];
      ++total;
    }
    return *std::max_element(n.begin(), n.end()) / (total / b.experts);
  };
  const std::vector<int64_t> tokens{200000};
  RoutingBatch one, many;
  g->generate(0, 0, tokens, one);
  CHECK(max_over_mean(one, -1) == Approx(64 / harmonic).epsilon(0.03));
  // Its order is a permutation: even the least popular rank (1/64 of 1/H,
  // about 660 tokens here) lands on an expert no other rank took.
  std::vector<int> hits(64, 0);
  for (int32_t e : one.expert) ++hits[e];
  CHECK(*std::min_element(hits.begin(), hits.end()) > 400);
  const std::vector<int32_t> group{0};
  const std::vector<int64_t> thousand{1000};
  g->generate(0, 0, tokens, many, SequenceLayout{group, thousand});
  CHECK(max_over_mean(many, -1) < 1.3);

  // Two sources of one group hold parts of the same sequence (its hottest
  // expert is theirs both); two groups are two sequences.
  auto hottest = [](const RoutingBatch& b, int32_t source) {
    std::vector<int> n(b.experts, 0);
    for (int64_t t = 0; t < b.tokens; ++t)
      if (b.source_rank[t] == source) ++n[b.expert[t]];
    return std::max_element(n.begin(), n.end()) - n.begin();
  };
  const std::vector<int64_t> two{50000, 50000};
  const std::vector<int32_t> shared{3, 3}, apart{3, 4};
  RoutingBatch same, different;
  g->generate(1, 2, two, same, SequenceLayout{shared, {}});
  g->generate(1, 2, two, different, SequenceLayout{apart, {}});
  CHECK(hottest(same, 0) == hottest(same, 1));
  CHECK(hottest(different, 0) == hottest(same, 0));  // group 3 is group 3 in either batch
  CHECK(hottest(different, 1) != hottest(different, 0));
  CHECK_THROWS_AS(g->generate(0, 0, two, same, SequenceLayout{group, {}}), std::logic_error);
  CHECK_THROWS_WITH(make_generator("sequence", m, 1, "routing.generator"),
                    Catch::Contains("routing.generator"));
  CHECK_THROWS_WITH(make_generator("sequence:-1", m, 1, "routing.generator"),
                    Catch::Contains("the exponent S"));
}

TEST_CASE("skew shows in the statistics", "[workloads][stats]") {
  const auto m = model("olmoe-1b-7b");
  RoutingStats uni(m.routed_experts, 1, 1.0), skew(m.routed_experts, 1, 1.0);
  uni.add(0, gen("uniform", 1, 50000));
  skew.add(0, gen("zipf:1.2", 1, 50000));
  const Json u = uni.to_json(), z = skew.to_json();
  CHECK(u["max_over_mean_load"].get<double>() < 1.1);
  CHECK(z["max_over_mean_load"].get<double>() > 3);
  CHECK(u["normalized_entropy"].get<double>() > 0.99);
  CHECK(z["drop_rate"].get<double>() > u["drop_rate"].get<double>());
}

TEST_CASE("capacity follows ceil(C x tokens x k / experts)", "[workloads][gating]") {
  CHECK(expert_capacity(1.0, 1000, 2, 8) == 250);
  CHECK(expert_capacity(1.25, 1000, 2, 8) == 313);  // 312.5 rounds up
  CHECK(expert_capacity(1.0, 10, 1, 3) == 4);
  // Hand-worked: 4 tokens, top-1, 2 experts, C = 1 -> capacity 2. Tokens 0-2
  // pick expert 0: token 2 (arrival order) or the lowest weight (score) drops.
  RoutingBatch b;
  b.resize(4, 1, 2);
  b.expert = {0, 0, 0, 1};
  b.weight = {0.2f, 0.9f, 0.5f, 1.0f};
  const ExpertPlacement place = place_experts(2, 1, 0, std::vector<double>{0.5, 0.5});
  GatingConfig cfg;
  cfg.capacity_factor = 1.0;
  GatingOutcome out;
  apply_gating(b, cfg, place, std::vector<double>{0.5, 0.5}, 1, out);
  CHECK(out.slot == std::vector<int32_t>{0, 0, -1, 1});
  cfg.drop = GatingConfig::Drop::kScore;
  apply_gating(b, cfg, place, std::vector<double>{0.5, 0.5}, 1, out);
  CHECK(out.slot == std::vector<int32_t>{-1, 0, 0, 1});
  CHECK(out.dropped_per_expert == std::vector<int64_t>{1, 0});
}

TEST_CASE("every policy conserves tokens: in x k = routed + dropped", "[workloads][gating]") {
  const auto m = model("olmoe-1b-7b");
  const RoutingBatch b = gen("zipf:1.2", 5, 8192);
  const auto g = make_generator("zipf:1.2", m, 5, "gen");
  const std::vector<double> pop = g->popularity(0, 0);
  for (int policy = 0; policy < 6; ++policy) {
    GatingConfig cfg;
    cfg.capacity_factor = 1.25;
    if (policy == 1) cfg.drop = GatingConfig::Drop::kScore;
    if (policy == 2) cfg.capacity_factor = std::numeric_limits<double>::infinity();
    if (policy == 3) cfg.policy = GatingConfig::Policy::kExpertChoice;
    if (policy == 4) cfg.capacity_per_rank = true;
    if (policy == 5) cfg.redundant_experts = 8;
    const ExpertPlacement place = place_experts(64, 8, cfg.redundant_experts, pop);
    GatingOutcome out;
    apply_gating(b, cfg, place, pop, 2, out);
    INFO("policy " << policy);
    CHECK(out.routed + out.dropped == b.tokens * b.top_k);
    const int64_t kept =
        std::count_if(out.slot.begin(), out.slot.end(), [](int s) { return s >= 0; });
    CHECK(kept == out.routed);
    CHECK(std::accumulate(out.dropped_per_expert.begin(), out.dropped_per_expert.end(),
                          int64_t{0}) == out.dropped);
    if (policy == 2) CHECK(out.dropped == 0);
    if (policy != 2) CHECK(out.dropped > 0);
  }
}

TEST_CASE("node-limited routing never exceeds M nodes per token", "[workloads][gating]") {
  const auto m = model("deepseek-v3");
  const auto g = make_generator("zipf:0.8", m, 11, "gen");
  RoutingBatch b;
  g->generate(0, 0, std::vector<int64_t>{4096}, b);
  const std::vector<double> pop = g->popularity(0, 0);
  // EP64 over 8 nodes: 8 ranks per node, 4 experts per rank.
  const ExpertPlacement place = place_experts(256, 64, 0, pop);
  for (int limit : {1, 2, 4}) {
    GatingConfig cfg;
    cfg.node_limit = limit;
    GatingOutcome out;
    apply_gating(b, cfg, place, pop, 8, out);
    int worst = 0;
    for (int64_t t = 0; t < b.tokens; ++t) {
      std::set<int> nodes, experts;
      for (int k = 0; k < b.top_k; ++k) {
        const int slot = out.slot[t * b.top_k + k];
        nodes.insert(place.rank_of_slot(slot) / 8);
        experts.insert(place.slot_expert[slot]);
      }
      worst = std::max(worst, static_cast<int>(nodes.size()));
      REQUIRE(static_cast<int>(experts.size()) == b.top_k);
    }
    CHECK(worst <= limit);
    CHECK(out.routed == b.tokens * b.top_k);
  }
}

TEST_CASE("device-limited routing never exceeds M ranks per token, over 64 ranks too",
          "[workloads][gating]") {
  // The group limiter keeps a token's allowed groups in a bit mask up to 64
  // groups and in stamped arrays beyond: EP32 and EP128 take one path each.
  const auto m = model("deepseek-v3");
  const auto g = make_generator("zipf:0.8", m, 5, "gen");
  RoutingBatch b;
  g->generate(0, 0, std::vector<int64_t>{4096}, b);
  const std::vector<double> pop = g->popularity(0, 0);
  for (int ep : {32, 128}) {
    const ExpertPlacement place = place_experts(256, ep, 0, pop);
    for (int limit : {1, 3, 6}) {
      // EP128 holds 2 experts per rank: 8 experts need at least 4 ranks.
      if (limit * place.slots_per_rank() < b.top_k) continue;
      INFO("EP" << ep << ", device_limit " << limit);
      GatingConfig cfg;
      cfg.device_limit = limit;
      GatingOutcome out;
      apply_gating(b, cfg, place, pop, 8, out);
      int worst = 0;
      int64_t changed = 0;
      for (int64_t t = 0; t < b.tokens; ++t) {
        std::set<int> ranks, experts;
        for (int k = 0; k < b.top_k; ++k) {
          const int slot = out.slot[t * b.top_k + k];
          ranks.insert(place.rank_of_slot(slot));
          experts.insert(place.slot_expert[slot]);
          changed += place.slot_expert[slot] != b.expert[t * b.top_k + k];
        }
        worst = std::max(worst, static_cast<int>(ranks.size()));
        REQUIRE(static_cast<int>(experts.size()) == b.top_k);
      }
      CHECK(worst == limit);
      CHECK(changed > 0);
      CHECK(out.routed == b.tokens * b.top_k);
    }
  }
  // A limit that cannot hold top-k experts is a configuration error.
  GatingConfig cfg;
  cfg.device_limit = 3;
  CHECK_NOTHROW(check_group_limits(cfg, 8, 4, 8, "gating"));
  CHECK_THROWS_WITH(check_group_limits(cfg, 8, 2, 8, "gating"),
                    Catch::Contains("gating.device_limit") && Catch::Contains("at least 4"));
  cfg = GatingConfig{};
  cfg.node_limit = 1;
  CHECK_NOTHROW(check_group_limits(cfg, 8, 2, 4, "gating"));
  CHECK_THROWS_WITH(check_group_limits(cfg, 8, 1, 4, "gating"),
                    Catch::Contains("gating.node_limit") && Catch::Contains("at least 2"));
}

TEST_CASE("the model router's group limit: top-k inside the best topk_groups of n_group",
          "[workloads][gating]") {
  // DeepSeek-V3: 8 groups of 32 experts, a token's 8 experts in at most 4
  // groups (config.json n_group / topk_group; SGLang biased_grouped_topk).
  const auto m = model("deepseek-v3");
  const GatingConfig cfg = with_model_router(GatingConfig{}, m);
  CHECK(cfg.expert_groups == 8);
  CHECK(cfg.expert_group_limit == 4);
  CHECK(with_model_router(GatingConfig{}, model("mixtral-8x7b")).expert_group_limit == 0);
  const auto g = make_generator("uniform", m, 3, "gen");
  RoutingBatch b;
  g->generate(0, 0, std::vector<int64_t>{32768}, b);
  const std::vector<double> pop = g->popularity(0, 0);
  const ExpertPlacement place = place_experts(256, 32, 0, pop);
  GatingOutcome limited, free;
  apply_gating(b, cfg, place, pop, 8, limited, 7);
  apply_gating(b, GatingConfig{}, place, pop, 8, free, 7);
  auto load_spread = [&](const GatingOutcome& out) {  // max / mean copies per expert
    std::vector<int64_t> load(256, 0);
    for (int32_t slot : out.slot) ++load[place.slot_expert[slot]];
    return static_cast<double>(*std::max_element(load.begin(), load.end())) /
           (static_cast<double>(b.tokens) * b.top_k / 256);
  };
  double groups_used = 0, nodes_used = 0, free_nodes = 0;
  for (int64_t t = 0; t < b.tokens; ++t) {
    std::set<int> groups, experts, nodes, nodes_free;
    for (int k = 0; k < b.top_k; ++k) {
      const int e = place.slot_expert[limited.slot[t * b.top_k + k]];
      groups.insert(e / 32);
      experts.insert(e);
      nodes.insert(place.rank_of_slot(limited.slot[t * b.top_k + k]) / 8);
      nodes_free.insert(place.rank_of_slot(free.slot[t * b.top_k + k]) / 8);
    }
    REQUIRE(groups.size() <= 4);
    REQUIRE(static_cast<int>(experts.size()) == b.top_k);
    groups_used += static_cast<double>(groups.size()) / b.tokens;
    nodes_used += static_cast<double>(nodes.size()) / b.tokens;
    free_nodes += static_cast<double>(nodes_free.size()) / b.tokens;
  }
  CHECK(groups_used > 3.5);  // uniform scores spread a token over its 4 groups
  // EP32 on 4 nodes, 2 groups per node: choosing 4 of 8 groups touches
  // 4 x (1 - C(6,4) / C(8,4)) = 3.14 nodes on average; unlimited, 8 of 256
  // experts touch 4 x (1 - C(192,8) / C(256,8)) = 3.60.
  CHECK(nodes_used == Approx(4 * (1 - 15.0 / 70)).epsilon(0.02));
  CHECK(free_nodes == Approx(3.60).epsilon(0.02));
  // Uniform routing stays uniform under the limit.
  CHECK(load_spread(limited) < 1.1);
  CHECK(load_spread(limited) < load_spread(free) + 0.03);
}

TEST_CASE("EPLB's hierarchical placement keeps each expert group on one node",
          "[workloads][gating]") {
  // 256 experts in 8 groups, 32 replicas, EP32 on 4 nodes (eplb.py
  // rebalance_experts_hierarchical): whole groups to nodes, 2 per node, each
  // node's 8 replicas among its own groups' experts, 9 slots per rank.
  std::vector<double> load(256);
  for (int e = 0; e < 256; ++e) load[e] = 1.0 / (1 + e % 37);  // uneven, groups differ
  const ExpertPlacement p = place_experts(256, 32, 32, load, 8, 4);
  CHECK(p.slots == 288);
  CHECK(p.slots_per_rank() == 9);
  std::vector<std::set<int>> groups_on_node(4);
  std::vector<int> replicas_on_node(4, 0);
  for (int e = 0; e < 256; ++e) {
    std::set<int> nodes;
    for (int s : p.expert_slots[e]) nodes.insert(p.rank_of_slot(s) / 8);
    REQUIRE(nodes.size() == 1);  // every replica of an expert on its group's node
    groups_on_node[*nodes.begin()].insert(e / 32);
    replicas_on_node[*nodes.begin()] += static_cast<int>(p.expert_slots[e].size()) - 1;
  }
  for (int n = 0; n < 4; ++n) {
    CHECK(groups_on_node[n].size() == 2);
    CHECK(replicas_on_node[n] == 8);
  }
  for (int s = 0; s < p.slots; ++s) CHECK(p.slot_expert[s] >= 0);
  // Groups that do not divide over the nodes: the global policy, as before.
  const ExpertPlacement global = place_experts(256, 36, 32, load, 8, 9);
  CHECK(global.expert_slots == place_experts(256, 36, 32, load).expert_slots);
}

TEST_CASE("replication places the hottest experts twice and splits their tokens",
          "[workloads][gating]") {
  std::vector<double> load(8, 1.0);
  load[3] = 10;
  const ExpertPlacement p = place_experts(8, 4, 4, load);
  CHECK(p.slots == 12);
  CHECK(p.expert_slots[3].size() >= 2);
  std::set<int> ranks;
  for (int s : p.expert_slots[3]) ranks.insert(p.rank_of_slot(s));
  CHECK(ranks.size() == p.expert_slots[3].size());  // replicas on distinct ranks
  for (int s = 0; s < p.slots; ++s) CHECK(p.slot_expert[s] >= 0);
}

struct TempFile {
  std::string path;
  TempFile() {
    char name[] = "/tmp/moesim-test-XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path = name;
  }
  ~TempFile() { std::remove(path.c_str()); }
};

TEST_CASE("traces round-trip exactly and corrupt files are rejected with offsets",
          "[workloads][trace]") {
  const auto m = model("mixtral-8x7b");
  const auto g = make_generator("zipf:1.2", m, 9, "gen");
  TempFile f;
  TraceHeader h{m.name, m.routed_experts, m.top_k, 2, 2, 4, "zipf:1.2", 9};
  std::vector<RoutingBatch> written;
  {
    TraceWriter w(f.path, h);
    for (int s = 0; s < 2; ++s) {
      for (int l = 0; l < 2; ++l) {
        RoutingBatch b;
        g->generate(s, l, std::vector<int64_t>{100, 100, 100, 57}, b);
        w.write(s, l, b);
        written.push_back(b);
      }
    }
    w.finish();
  }
  {
    TraceReader r(f.path);
    CHECK(r.header().model == "mixtral-8x7b");
    RoutingBatch b;
    int s, l, i = 0;
    while (r.next(s, l, b)) {
      REQUIRE(i < 4);
      CHECK(s == i / 2);
      CHECK(l == i % 2);
      CHECK(b.expert == written[i].expert);
      CHECK(b.weight == written[i].weight);
      CHECK(b.source_rank == written[i].source_rank);
      ++i;
    }
    CHECK(i == 4);
  }
  std::string bytes;
  {
    std::ifstream in(f.path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto read_all = [&](const std::string& content) {
    TempFile g2;
    std::ofstream(g2.path, std::ios::binary) << content;
    TraceReader r(g2.path);
    RoutingBatch b;
    int s, l;
    while (r.next(s, l, b)) {
    }
  };
  CHECK_NOTHROW(read_all(bytes));
  CHECK_THROWS_WITH(read_all(bytes.substr(0, bytes.size() - 7)), Catch::Contains("truncated"));
  CHECK_THROWS_WITH(read_all(bytes.substr(0, 20)), Catch::Contains("byte"));
  std::string flipped = bytes;
  flipped[flipped.size() - 3] ^= 0x55;
  CHECK_THROWS_WITH(read_all(flipped), Catch::Contains("checksum"));
  std::string magic = bytes;
  magic[0] = 'X';
  CHECK_THROWS_WITH(read_all(magic), Catch::Contains("bad magic"));
  std::string version = bytes;
  version[8] = 9;
  CHECK_THROWS_WITH(read_all(version), Catch::Contains("version 9"));
  // A header edited without its checksum is caught; with the checksum
  // recomputed, fewer experts than the ids used are still caught.
  std::string experts = bytes;
  const size_t at = experts.find("\"experts\":8");
  REQUIRE(at != std::string::npos);
  experts[at + 10] = '2';
  CHECK_THROWS_WITH(read_all(experts), Catch::Contains("header checksum mismatch"));
  uint32_t header_len = 0;
  std::memcpy(&header_len, experts.data() + 12, 4);
  const uint32_t sum = fnv1a32(experts.data() + 16, header_len);
  std::memcpy(experts.data() + 16 + header_len, &sum, 4);
  CHECK_THROWS_WITH(read_all(experts), Catch::Contains("expert id"));
}

TEST_CASE("replay resamples a recorded trace and keeps its skew", "[workloads][trace]") {
  const auto m = model("olmoe-1b-7b");
  TempFile f;
  {
    const auto g = make_generator("zipf:1.2", m, 4, "gen");
    TraceWriter w(f.path, TraceHeader{m.name, m.routed_experts, m.top_k, 1, 1, 1, "zipf:1.2", 4});
    RoutingBatch b;
    g->generate(0, 0, std::vector<int64_t>{20000}, b);
    w.write(0, 0, b);
    w.finish();
  }
  const auto replay = make_generator("replay:" + f.path, m, 9, "routing.generator");
  RoutingBatch a, b;
  replay->generate(3, 5, std::vector<int64_t>{30000, 30000}, a);  // any step/layer, more tokens
  replay->generate(3, 5, std::vector<int64_t>{30000, 30000}, b);
  CHECK(a.expert == b.expert);
  CHECK(a.tokens == 60000);
  RoutingStats src(m.routed_experts, 1, 1.0), rep(m.routed_experts, 1, 1.0);
  rep.add(0, a);
  {
    TraceReader r(f.path);
    RoutingBatch orig;
    int s, l;
    REQUIRE(r.next(s, l, orig));
    src.add(0, orig);
  }
  CHECK(rep.to_json()["max_over_mean_load"].get<double>() ==
        Approx(src.to_json()["max_over_mean_load"].get<double>()).epsilon(0.1));
  CHECK_THROWS_WITH(make_generator("replay:" + f.path, model("mixtral-8x7b"), 1, "routing.trace"),
                    Catch::Contains("routing.trace: trace"));
}

}  // namespace
}  // namespace moesim::workloads
