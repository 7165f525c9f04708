// Issue #13's communication mechanisms against closed forms: NCCL's NVLS and
// multi-rail rings, the tuner's choice, direct vs hierarchical all-to-all,
// DeepEP's node-deduplicated and low-latency dispatch, and NIC sharing in the
// analytic timer.

#include <numeric>
#include <span>

#include <catch2/catch.hpp>

#include "hwmodels/cluster.h"
#include "sim/collectives/analytic.h"
#include "sim/collectives/flow.h"

namespace moesim::coll {
namespace {

hw::ClusterSpec cluster(const std::string& preset, int nodes, Json overrides = Json::object()) {
  overrides["preset"] = preset;
  overrides["nodes"] = nodes;
  return hw::resolve_cluster(overrides, "cluster");
}

std::vector<int> first(int n) {
  std::vector<int> r(n);
  std::iota(r.begin(), r.end(), 0);
  return r;
}

struct Clock : EventHandler {
  Engine* engine = nullptr;
  std::vector<double> at;
  void on_event(uint64_t) override { at.push_back(engine->now().seconds()); }
};

// Runs `c` alone on the flow network; returns (seconds, flows started).
std::pair<double, uint64_t> flow_time(const hw::ClusterSpec& cluster, const Collective& c) {
  Engine engine;
  FlowCollectives flow(engine, cluster);
  Clock done;
  done.engine = &engine;
  flow.start(c, done, 0);
  engine.run();
  return {done.at.at(0), flow.flows_started()};
}

Collective reduction(CollectiveOp op, const std::vector<int>& ranks, double bytes,
                     ReduceAlgorithm algo) {
  Collective c;
  c.op = op;
  c.ranks = ranks;
  c.bytes = bytes;
  c.reduce = algo;
  return c;
}

// An all-to-all of `matrix` bytes (row = sender) over `ranks`, both owned by
// the caller.
Collective all_to_all(std::span<const int> ranks, std::span<const double> matrix,
                      AllToAllAlgorithm algo) {
  Collective c;
  c.op = CollectiveOp::kAllToAllV;
  c.ranks = ranks;
  c.matrix_bytes = matrix;
  c.algorithm = algo;
  return c;
}

// NVLS all-reduce moves (n+1)/n of the buffer through each port at 0.85 of the
// ring's rate: busbw = 0.85 B x 2(n-1)/(n+1) (nccl-tests #239). On 8 H100s
// (B = 369 GB/s) that is 488 GB/s, against ~480 measured (nccl-tests #212) and
// the ring's B = 369.
TEST_CASE("NVLS all-reduce busbw on one DGX H100 node, and auto picks it", "[collectives]") {
  const auto c = cluster("dgx-h100", 1);
  const double S = 8e9, B = c.node.achievable_intra_bytes_per_s();
  const auto ranks = first(8);
  const Collective nvls = reduction(CollectiveOp::kAllReduce, ranks, S, ReduceAlgorithm::kNvls);
  const double expect_busbw = 0.85 * B * 2.0 * 7 / 9;
  const double analytic = collective_seconds(c, nvls);
  const double flow = flow_time(c, nvls).first;
  CHECK(S / analytic * 2 * 7 / 8 == Approx(expect_busbw).epsilon(0.01));
  CHECK(flow == Approx(analytic).epsilon(0.01));
  CHECK(expect_busbw / 1e9 == Approx(480).epsilon(0.03));
  CHECK(choose_reduce_algorithm(c, reduction(CollectiveOp::kAllReduce, ranks, S,
                                             ReduceAlgorithm::kAuto)) == ReduceAlgorithm::kNvls);
  // Not on two GPUs (NVLS only gains from 5 ranks on, NVIDIA/nccl #1455), nor
  // where the switch has no SHARP (A100).
  const auto two = first(2);
  CHECK(choose_reduce_algorithm(c, reduction(CollectiveOp::kAllReduce, two, S,
                                             ReduceAlgorithm::kAuto)) == ReduceAlgorithm::kRing);
  CHECK(choose_reduce_algorithm(cluster("dgx-a100", 1), reduction(CollectiveOp::kAllReduce, ranks,
                                                                  S, ReduceAlgorithm::kAuto)) ==
        ReduceAlgorithm::kRing);
}

// A forced algorithm (options.collective_algo) runs where NCCL offers it for
// the op and group: NVLS inside one node with SHARP, tree for all-reduce
// across nodes; elsewhere the ring, timed as the ring, on both models.
TEST_CASE("a forced reduction algorithm runs where NCCL offers it, the ring elsewhere",
          "[collectives]") {
  const auto c = cluster("dgx-h100", 2);
  const double S = 4e9;
  const auto one_node = first(8), two_nodes = first(16);
  auto runs = [&](CollectiveOp op, const std::vector<int>& ranks, ReduceAlgorithm forced) {
    const Collective col = reduction(op, ranks, S, forced);
    const ReduceAlgorithm algo = resolve_reduce_algorithm(c, col);
    const auto e = estimate_collective(c, col);
    CHECK(e.reduce == algo);
    CHECK(e.seconds == Approx(estimate_collective(c, reduction(op, ranks, S, algo)).seconds));
    CHECK(flow_time(c, col).first == Approx(e.seconds).epsilon(0.05));
    return algo;
  };
  CHECK(runs(CollectiveOp::kAllReduce, one_node, ReduceAlgorithm::kNvls) == ReduceAlgorithm::kNvls);
  CHECK(runs(CollectiveOp::kAllReduce, two_nodes, ReduceAlgorithm::kNvls) ==
        ReduceAlgorithm::kRing);
  CHECK(runs(CollectiveOp::kAllReduce, two_nodes, ReduceAlgorithm::kTree) ==
        ReduceAlgorithm::kTree);
  CHECK(runs(CollectiveOp::kReduceScatter, two_nodes, ReduceAlgorithm::kTree) ==
        ReduceAlgorithm::kRing);
  CHECK(runs(CollectiveOp::kAllReduce, one_node, ReduceAlgorithm::kTree) == ReduceAlgorithm::kRing);
  CHECK(runs(CollectiveOp::kAllGather, one_node, ReduceAlgorithm::kNvls) == ReduceAlgorithm::kNvls);
  CHECK_FALSE(reduce_algorithm_offered(
      cluster("dgx-a100", 1),
      reduction(CollectiveOp::kAllReduce, one_node, S, ReduceAlgorithm::kNvls),
      ReduceAlgorithm::kNvls));
}

// A 16-GPU ring over 2 DGX H100 nodes runs one channel per NIC: 8 x 48.5 GB/s
// across nodes, so NVLink (369 GB/s) bounds it, not one NIC (48.5 GB/s).
TEST_CASE("multi-rail ring across two nodes: busbw = min(NVLink, 8 NICs)", "[collectives]") {
  const auto c = cluster("dgx-h100", 2);
  const double S = 16e9, B = c.node.achievable_intra_bytes_per_s();
  const double nics = 8 * c.node.achievable_nic_bytes_per_s();
  const auto ranks = first(16);
  const Collective ring = reduction(CollectiveOp::kAllReduce, ranks, S, ReduceAlgorithm::kRing);
  CHECK(ring_bandwidth(c, first(16)) == Approx(std::min(B, nics)));
  const double analytic = collective_seconds(c, ring);
  const auto [flow, flows] = flow_time(c, ring);
  const double busbw = S / flow * 2 * 15 / 16;
  CHECK(busbw == Approx(std::min(B, nics)).epsilon(0.05));
  CHECK(flow == Approx(analytic).epsilon(0.05));
  CHECK(flows == 8u * 16 * 30);  // 8 channels x 16 hops x 2(n-1) steps
  // One GPU per node: one channel, one NIC.
  const std::vector<int> spread = {0, 8};
  CHECK(ring_bandwidth(c, spread) == Approx(c.node.achievable_nic_bytes_per_s()));
}

// Direct: every pair its own transfer (64 x 63 at 64 ranks); hierarchical
// (PXN) aggregates what shares every link.
TEST_CASE("direct and hierarchical all-to-all differ in flows and paths", "[collectives]") {
  const auto c = cluster("dgx-h100", 8);
  std::vector<double> m(64 * 64, 1e6);
  const auto ranks = first(64);
  Collective a2a = all_to_all(ranks, m, AllToAllAlgorithm::kDirect);
  const auto [direct_s, direct_flows] = flow_time(c, a2a);
  a2a.algorithm = AllToAllAlgorithm::kHierarchical;
  const auto [hier_s, hier_flows] = flow_time(c, a2a);
  CHECK(direct_flows == 64u * 63);
  CHECK(hier_flows < direct_flows / 2);
  // Direct traffic between different rails crosses the spine (7/8 of it).
  a2a.algorithm = AllToAllAlgorithm::kDirect;
  CHECK(estimate_collective(c, a2a).network_s > 0);
  CHECK(direct_s > 0);
  CHECK(hier_s > 0);
}

// Rank 0 (node 0) sends one token whose experts sit on ranks 1 (its node), 8
// and 9 (node 1). Node-deduplicated dispatch: NVLink 0 -> 1, one RDMA transfer
// 0 -> 8 (rank 0's rail on node 1), then NVLink 8 -> 9: 3 transfers, 1 on the
// network. Per-copy (direct): copies to 1, 8 and 9, two on the network.
TEST_CASE("node-deduplicated dispatch: a token crosses the network once per node",
          "[collectives]") {
  const auto c = cluster("dgx-h100", 2);
  const auto ranks = first(16);
  std::vector<int64_t> rank_tokens(256, 0), node_tokens(256, 0), copies(256, 0);
  rank_tokens[1] = rank_tokens[8] = rank_tokens[9] = 1;
  node_tokens[1] = node_tokens[8] = 1;
  copies[1] = copies[8] = copies[9] = 1;
  const double B = 7168;
  Collective dedup;
  dedup.op = CollectiveOp::kAllToAllV;
  dedup.ranks = ranks;
  dedup.rank_tokens = rank_tokens;
  dedup.node_tokens = node_tokens;
  dedup.bytes_per_copy = B;
  dedup.algorithm = AllToAllAlgorithm::kHierarchical;
  Engine engine;
  FlowCollectives flow(engine, c);
  Clock done;
  done.engine = &engine;
  flow.start(dedup, done, 0);
  engine.run();
  CHECK(flow.flows_started() == 3);
  CHECK(flow.bytes_sent() == Approx(3 * B));
  double network = 0;
  for (const auto& l : flow.network().link_stats()) {
    if (l.name.find("nic") != std::string::npos && l.name.ends_with(".out"))
      network += l.bytes_carried;
  }
  CHECK(network == Approx(B));
  // The combine returns along the same paths.
  dedup.transpose = true;
  Engine engine2;
  FlowCollectives back(engine2, c);
  Clock done2;
  done2.engine = &engine2;
  back.start(dedup, done2, 0);
  engine2.run();
  CHECK(back.bytes_sent() == Approx(3 * B));
}

// Low-latency kernels write every copy as its own message. 16 ranks on 2
// nodes, C copies of M bytes from each rank to each rank:
//   pure RDMA: each NIC sends 15 C M (a rank's copies to itself stay on its
//   GPU: DeepEP internode_ll.cu) -> 15 C M / B_nic;
//   NVLink-assisted: 7 same-node peers over NVLink at the low-latency rate
//   while 8 remote peers go through the NIC (the RDMA puts are non-blocking:
//   DeepEP internode_ll.cu), so the slower of the two.
// Both add the kernel's fixed time and five switch hops (rank r's NIC is on
// rail r mod 8, so most copies cross rails through the spine).
TEST_CASE("low-latency dispatch: bytes of every copy, NVLink beside RDMA", "[collectives]") {
  const double C = 64, M = 7408;
  std::vector<double> m(256, C * M);
  const auto ranks = first(16);
  Collective ll = all_to_all(ranks, m, AllToAllAlgorithm::kLowLatency);
  const auto rdma = cluster("hgx-h800", 2, Json{{"node", {{"low_latency_nvlink", false}}}});
  const auto e1 = estimate_collective(rdma, ll);
  CHECK(e1.transfer_s == Approx(15 * C * M / rdma.node.achievable_nic_bytes_per_s()));
  CHECK(e1.bottleneck == Bottleneck::kNic);
  const double fixed = rdma.node.low_latency_kernel_s + 5 * rdma.fabric.hop_latency_s;
  CHECK(rdma.node.low_latency_kernel_s > 0);
  CHECK(e1.latency_s == Approx(fixed));
  const auto nvl = cluster("hgx-h800", 2);
  const auto e2 = estimate_collective(nvl, ll);
  CHECK(e2.transfer_s ==
        Approx(std::max(7 * C * M / nvl.node.achievable_low_latency_intra_bytes_per_s(),
                        8 * C * M / nvl.node.achievable_nic_bytes_per_s())));
  CHECK(e2.bottleneck == Bottleneck::kNic);
  CHECK(e2.latency_s == Approx(fixed));
  // Every rank carries the same load: the rank average is the slowest rank.
  CHECK(e2.rank_mean_seconds == Approx(e2.seconds));
  // The flows wait the same fixed time and share the links max-min fairly.
  CHECK(flow_time(nvl, ll).first == Approx(e2.seconds).epsilon(0.02));
  CHECK(flow_time(rdma, ll).first == Approx(e1.seconds).epsilon(0.02));
}

// DeepEP's README averages every rank's kernel time (deepseek-ai/DeepEP
// issue #71); the estimate's rank mean is that figure. 8 ranks of one node,
// NVLink-assisted, C M bytes to every peer, rank 0 three times that to rank
// 1, and a large self copy that never leaves the GPU. Per rank, in units of
// C M / rate: ranks 0 (out) and 1 (in) carry 9, the other six 7, so the
// slowest is 9 and the mean 60 / 8 = 7.5, each plus the kernel's fixed time.
TEST_CASE("low-latency kernels: each rank's own busiest link, averaged", "[collectives]") {
  const double C = 128, M = 7408;
  std::vector<double> m(64, C * M);
  m[0 * 8 + 1] = 3 * C * M;
  m[0 * 8 + 0] = 100 * C * M;
  const auto ranks = first(8);
  Collective ll = all_to_all(ranks, m, AllToAllAlgorithm::kLowLatency);
  const auto c = cluster("hgx-h800", 1);
  const double unit = C * M / c.node.achievable_low_latency_intra_bytes_per_s();
  const auto e = estimate_collective(c, ll);
  CHECK(e.latency_s == Approx(c.node.low_latency_kernel_s));
  CHECK(e.transfer_s == Approx(9 * unit));
  CHECK(e.seconds == Approx(9 * unit + c.node.low_latency_kernel_s));
  CHECK(e.rank_mean_seconds == Approx(7.5 * unit + c.node.low_latency_kernel_s));
  // Without a calibrated kernel time the generic message latency applies.
  const auto plain = cluster("hgx-h800", 1, Json{{"node", {{"low_latency_kernel_us", 0}}}});
  const auto e0 = estimate_collective(plain, ll);
  CHECK(e0.latency_s == Approx(plain.node.intra_latency_s + plain.fabric.message_overhead_s * 4));
}

// On a mesh (MI300X's Infinity Fabric: one link per GPU pair) a rank's own
// load is its busiest link out or in. 8 ranks, u seconds on every link, 3u
// from rank 0 to rank 1: ranks 0 and 1 carry 3u, the other six u, so the
// slowest rank takes 3u and the mean 12u / 8 = 1.5u.
TEST_CASE("all-to-all on a mesh: each rank's busiest link out or in, averaged", "[collectives]") {
  const auto c = cluster("mi300x-8", 1);
  const double B = 1e8;
  std::vector<double> m(64, B);
  const auto ranks = first(8);
  Collective a2a = all_to_all(ranks, m, AllToAllAlgorithm::kDirect);
  const auto even = estimate_collective(c, a2a);
  const double u = even.transfer_s;
  CHECK(even.rank_mean_seconds == Approx(even.seconds));
  m[0 * 8 + 1] = 3 * B;
  a2a.matrix_bytes = m;
  const auto skewed = estimate_collective(c, a2a);
  CHECK(skewed.transfer_s == Approx(3 * u));
  CHECK(skewed.rank_mean_seconds == Approx(1.5 * u + skewed.latency_s));
}

// Two transfers of S bytes on the same NIC, started together, each alone
// taking T: sharing the NIC, both end at 2T; a third on other NICs is not
// slowed.
TEST_CASE("analytic timer: collectives in flight share a NIC", "[collectives]") {
  const auto c = cluster("dgx-h100", 2);
  const double S = 1e9;
  const double alone = send_recv_seconds(c, 0, 8, S);
  const double latency = alone - S / c.node.achievable_nic_bytes_per_s();
  Engine engine;
  AnalyticCollectives timer(engine, c);
  Clock done;
  done.engine = &engine;
  const std::vector<int> pair = {0, 8}, other = {1, 9};
  Collective p2p = reduction(CollectiveOp::kSendRecv, pair, S, ReduceAlgorithm::kRing);
  timer.start(p2p, done, 0);
  timer.start(p2p, done, 1);
  Collective elsewhere = reduction(CollectiveOp::kSendRecv, other, S, ReduceAlgorithm::kRing);
  elsewhere.key = 1;
  timer.start(elsewhere, done, 2);
  engine.run();
  REQUIRE(done.at.size() == 3);
  CHECK(done.at[0] == Approx(alone).epsilon(1e-6));  // the one on other NICs
  CHECK(done.at[1] == Approx(2 * (alone - latency) + latency).epsilon(1e-6));
  CHECK(done.at[2] == Approx(done.at[1]).epsilon(1e-9));
}

}  // namespace
}  // namespace moesim::coll
