#include <algorithm>
#include <numeric>
#include <set>

#include <catch2/catch.hpp>

#include "hwmodels/cluster.h"
#include "sim/collectives/analytic.h"
#include "sim/collectives/flow.h"
#include "sim/engine/engine.h"
#include "workloads/model_config.h"
#include "workloads/routing_generator.h"

namespace moesim::coll {
namespace {

class Done : public EventHandler {
 public:
  void on_event(uint64_t) override { at = now_of(); }
  std::function<SimTime()> now_of;
  SimTime at;
};

hw::ClusterSpec cluster(const std::string& preset, int nodes, Json overrides = Json::object()) {
  overrides["preset"] = preset;
  overrides["nodes"] = nodes;
  return hw::resolve_cluster(overrides, "cluster");
}

struct Run {
  double seconds;
  double sent, delivered;
  std::vector<net::FlowNetwork::LinkStats> links;
};

// Starts collectives on FlowCollectives with the arguments the tests read best.
struct Network {
  FlowCollectives& flow;
  void all_to_allv(const std::vector<int>& ranks, const std::vector<double>& bytes,
                   AllToAllAlgorithm algo, EventHandler& done, uint64_t arg) {
    Collective c;
    c.op = CollectiveOp::kAllToAllV;
    c.ranks = ranks;
    c.matrix_bytes = bytes;
    c.algorithm = algo;
    flow.start(c, done, arg);
  }
  void ring(CollectiveOp op, const std::vector<int>& ranks, double bytes, EventHandler& done,
            uint64_t arg) {
    Collective c;
    c.op = op;
    c.ranks = ranks;
    c.bytes = bytes;
    c.reduce = ReduceAlgorithm::kRing;
    flow.start(c, done, arg);
  }
  void all_reduce(const std::vector<int>& r, double b, EventHandler& d, uint64_t a) {
    ring(CollectiveOp::kAllReduce, r, b, d, a);
  }
  void reduce_scatter(const std::vector<int>& r, double b, EventHandler& d, uint64_t a) {
    ring(CollectiveOp::kReduceScatter, r, b, d, a);
  }
};

template <class Start>
Run simulate(const hw::ClusterSpec& c, Start start) {
  Engine engine;
  FlowCollectives flow(engine, c);
  Network net{flow};
  Done done;
  done.now_of = [&] { return engine.now(); };
  start(net, done);
  engine.run();
  const net::FlowNetwork& n = flow.network();
  return {done.at.seconds(), n.bytes_sent(), n.bytes_delivered(), n.link_stats()};
}

std::vector<int> first(int n) {
  std::vector<int> r(n);
  std::iota(r.begin(), r.end(), 0);
  return r;
}

// Latency of one ring step / message, as the network model charges it.
double step_latency(const hw::ClusterSpec& c, bool inter) {
  return c.node.intra_latency_s + (inter ? 3 * c.fabric.hop_latency_s : 0) +
         c.fabric.message_overhead_s;
}

TEST_CASE("ring all-reduce = 2(n-1)/n S/B + latency terms", "[network]") {
  const auto c = cluster("dgx-h100", 1);
  const double S = 1e9, B = c.node.achievable_intra_bytes_per_s();
  const auto r = simulate(c, [&](Network& n, Done& d) { n.all_reduce(first(8), S, d, 0); });
  const double expect = 2.0 * 7 / 8 * S / B + 2 * 7 * step_latency(c, false);
  CHECK(r.seconds == Approx(expect).epsilon(0.01));
  CHECK(r.seconds == Approx(all_reduce_seconds(c, first(8), S)).epsilon(0.01));
  // Across 4 nodes each GPU's ring hop crosses its own 400 Gb/s NIC, which
  // carries 97% of its 50 GB/s line rate as payload.
  const auto c4 = cluster("dgx-h100", 4);
  std::vector<int> across = {0, 8, 16, 24};
  const auto r4 = simulate(c4, [&](Network& n, Done& d) { n.all_reduce(across, S, d, 0); });
  CHECK(r4.seconds ==
        Approx(2.0 * 3 / 4 * S / (50e9 * 0.97) + 6 * step_latency(c4, true)).epsilon(0.01));
}

TEST_CASE("uniform all-to-all in one NVSwitch node = (n-1)/n S/B", "[network]") {
  const auto c = cluster("dgx-h100", 1);
  const double S = 4e9, B = c.node.achievable_intra_bytes_per_s();
  std::vector<double> m(64, S / 8);
  for (auto algo : {AllToAllAlgorithm::kDirect, AllToAllAlgorithm::kHierarchical}) {
    const auto r =
        simulate(c, [&](Network& n, Done& d) { n.all_to_allv(first(8), m, algo, d, 0); });
    CHECK(r.seconds == Approx(7.0 / 8 * S / B).epsilon(0.01));
  }
}

TEST_CASE("N senders into one receiver each get B/N", "[network]") {
  const auto c = cluster("dgx-h100", 1);
  const double S = 1e9, B = c.node.achievable_intra_bytes_per_s();
  for (int senders : {1, 3, 7}) {
    std::vector<double> m(64, 0);
    for (int s = 1; s <= senders; ++s) m[s * 8 + 0] = S;
    const auto r = simulate(c, [&](Network& n, Done& d) {
      n.all_to_allv(first(8), m, AllToAllAlgorithm::kDirect, d, 0);
    });
    // All finish together: each moved S at B / senders.
    CHECK(r.seconds - step_latency(c, false) == Approx(senders * S / B).epsilon(1e-6));
  }
}

TEST_CASE("a 2:1 oversubscribed fat tree doubles a spine-bound all-to-all", "[network]") {
  Json fat = {{"fabric", {{"kind", "fat_tree"}, {"nodes_per_leaf", 2}, {"oversubscription", 1}}}};
  const auto full = cluster("dgx-h100", 4, fat);
  fat["fabric"]["oversubscription"] = 2;
  const auto half = cluster("dgx-h100", 4, fat);
  // Every GPU sends 1 GB to each GPU in the other leaf's nodes only.
  std::vector<double> m(32 * 32, 0);
  for (int i = 0; i < 32; ++i) {
    for (int j = 0; j < 32; ++j) {
      if ((i / 16) != (j / 16)) m[i * 32 + j] = 1e9 / 16;
    }
  }
  auto t = [&](const hw::ClusterSpec& c) {
    return simulate(c,
                    [&](Network& n, Done& d) {
                      n.all_to_allv(first(32), m, AllToAllAlgorithm::kHierarchical, d, 0);
                    })
        .seconds;
  };
  CHECK(t(half) / t(full) == Approx(2.0).epsilon(0.05));
  CHECK(t(half) == Approx(all_to_allv_seconds(half, first(32), m, AllToAllAlgorithm::kHierarchical))
                       .epsilon(0.03));
}

TEST_CASE("bytes are conserved per flow and per link", "[network]") {
  const auto c = cluster("dgx-h100", 3);
  std::vector<double> m(24 * 24);
  for (size_t i = 0; i < m.size(); ++i) m[i] = (i % 7 == 0) ? 0 : 1e6 * (1 + i % 5);
  for (auto algo : {AllToAllAlgorithm::kDirect, AllToAllAlgorithm::kHierarchical}) {
    const auto r =
        simulate(c, [&](Network& n, Done& d) { n.all_to_allv(first(24), m, algo, d, 0); });
    CHECK(r.delivered == Approx(r.sent).epsilon(1e-9));
    // Every inter-node byte leaves through exactly one NIC and enters through
    // exactly one.
    double inter = 0;
    for (int i = 0; i < 24; ++i) {
      for (int j = 0; j < 24; ++j) {
        if (i != j && i / 8 != j / 8) inter += m[i * 24 + j];
      }
    }
    double out = 0, in = 0;
    for (const auto& l : r.links) {
      if (l.name.ends_with(".out") && l.name.find("nic") != std::string::npos)
        out += l.bytes_carried;
      if (l.name.ends_with(".in") && l.name.find("nic") != std::string::npos) in += l.bytes_carried;
      CHECK(l.bytes_carried <= l.capacity_bytes_per_s * r.seconds * (1 + 1e-9));
    }
    CHECK(out == Approx(inter).epsilon(1e-9));
    CHECK(in == Approx(inter).epsilon(1e-9));
  }
}

TEST_CASE("closed-form estimates agree with the flow simulation on isolated collectives",
          "[network]") {
  const auto c = cluster("dgx-h100", 4);
  std::vector<double> m(32 * 32, 2e6);
  for (auto algo : {AllToAllAlgorithm::kDirect, AllToAllAlgorithm::kHierarchical}) {
    const auto r =
        simulate(c, [&](Network& n, Done& d) { n.all_to_allv(first(32), m, algo, d, 0); });
    CHECK(r.seconds == Approx(all_to_allv_seconds(c, first(32), m, algo)).epsilon(0.03));
  }
  const auto rs = simulate(c, [&](Network& n, Done& d) { n.reduce_scatter(first(32), 1e9, d, 0); });
  CHECK(rs.seconds == Approx(reduce_scatter_seconds(c, first(32), 1e9)).epsilon(0.03));
}

// DeepEP V1 intra-node normal kernels (deepseek-ai/DeepEP, docs/legacy.md,
// "Performance"; shared/reference/measurements.md): EP8 on one H800 node,
// 4,096 tokens per rank, hidden 7,168, top-8 of 256 experts: dispatch
// bottleneck bandwidth 153 GB/s (FP8), combine 158 GB/s (BF16).
// DeepEP sends a token once per destination GPU, however many of its 8
// experts live there. Bottleneck bandwidth = bytes over the busiest link
// (a GPU's NVLink port) / simulated kernel time.
TEST_CASE("DeepEP EP8 intra-node dispatch/combine bottleneck bandwidth within 15%",
          "[network][validation]") {
  const auto c = cluster("hgx-h800", 1);
  const auto model = workloads::resolve_model(Json("deepseek-v3"), "model");
  const auto gen = workloads::make_generator("uniform", model, 1, "gen");
  workloads::RoutingBatch b;
  gen->generate(0, 0, std::vector<int64_t>(8, 4096), b);
  std::vector<double> unique(64, 0);  // tokens per (source GPU, destination GPU)
  for (int64_t t = 0; t < b.tokens; ++t) {
    std::set<int> dst;
    for (int k = 0; k < 8; ++k) dst.insert(b.expert[t * 8 + k] / 32);  // 32 experts per GPU
    for (int d : dst) unique[b.source_rank[t] * 8 + d] += 1;
  }
  // FP8: 1 byte per element plus one FP32 scale per 128 elements (56 x 4 bytes).
  const double dispatch_bytes = 7168 + 56 * 4, combine_bytes = 7168 * 2;
  for (const auto& [per_token, published] :
       {std::pair{dispatch_bytes, 153e9}, std::pair{combine_bytes, 158e9}}) {
    std::vector<double> m(64);
    for (int i = 0; i < 64; ++i) m[i] = unique[i] * per_token;
    const auto r = simulate(c, [&](Network& n, Done& d) {
      n.all_to_allv(first(8), m, AllToAllAlgorithm::kDirect, d, 0);
    });
    double busiest = 0;
    for (const auto& l : r.links) busiest = std::max(busiest, l.bytes_carried);
    const double bottleneck_bw = busiest / r.seconds;
    INFO("bottleneck bandwidth " << bottleneck_bw / 1e9 << " GB/s vs published "
                                 << published / 1e9);
    CHECK(bottleneck_bw == Approx(published).epsilon(0.15));
  }
}

// Preset link rates are datasheet figures; transfers move at rate x efficiency
// (nccl-tests #212: ~370 of H100's 450 GB/s NVLink per direction).
TEST_CASE("collectives run at the achievable, not the datasheet, link rate", "[network]") {
  const auto c = cluster("dgx-h100", 1);
  CHECK(c.node.intra_bytes_per_s == Approx(450e9));
  CHECK(c.node.achievable_intra_bytes_per_s() == Approx(369e9));
  const double S = 4e9;
  std::vector<double> m(64, S / 8);
  const double t = all_to_allv_seconds(c, first(8), m, AllToAllAlgorithm::kDirect);
  CHECK(t == Approx(7.0 / 8 * S / 369e9).epsilon(0.01));
  // Overriding the efficiency to 1 recovers the line-rate time.
  const auto line = cluster("dgx-h100", 1, Json{{"node", {{"intra_efficiency", 1}}}});
  CHECK(all_to_allv_seconds(line, first(8), m, AllToAllAlgorithm::kDirect) ==
        Approx(t * 0.82).epsilon(0.01));
}

}  // namespace
}  // namespace moesim::coll
