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
      CHECK(m.active_params() == Approx(m.published_active_params).epsilon(0.02));
    }
    CHECK(m.flops_per_token(4096) > 2 * (m.active_params() - m.embedding_params()));
  }
  // DeepSeek-V3 technical report: 671B total, 37B activated.
  CHECK(model("deepseek-v3").moe_layer_count() == 58);
  CHECK(model("switch-base-128").moe_layer_count() == 12);
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
  for (const std::string spec : {"uniform", "zipf:1.2", "dirichlet:0.5", "token_id:1.1",
                                 "drift:1.0:0.3", "correlated:1.0:0.8"}) {
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
