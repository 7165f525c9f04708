// moe_a2a_overlap: expert all-to-alls hidden behind another micro-batch's
// compute (Megatron-Core's combined 1F1B, DualPipe), and what the SMs the
// communication takes cost the compute beside it. Closed forms on toys
// small enough to work out by hand.

#include <algorithm>

#include <catch2/catch.hpp>

#include "sim/exec/layer_costs.h"
#include "sim/exec/training_step.h"
#include "tests/exec/test_costs.h"

namespace moesim::exec {
namespace {

using testing::even_routing;
using testing::LinearCost;
using testing::tiny_moe;

constexpr double kFlops = 1e14;  // 100 TFLOP/s; memory-bound kernels free
constexpr int kGpuSms = 132, kCommSms = 20;

StepRouting routing_for(const ModelShape& m, const ParallelConfig& p, int64_t tokens_per_rank) {
  StepRouting r(1);
  for (int l = 0; l < m.moe_layers(); ++l) {
    LayerRouting lr;
    lr.layer = l;
    lr.samples.push_back(even_routing(p.ep, m.experts, tokens_per_rank, m.top_k));
    r[0].push_back(lr);
  }
  return r;
}

TrainingStepSetup setup_for(const ModelShape& m, const ParallelConfig& p, int64_t seq,
                            int64_t global_batch) {
  TrainingStepSetup s;
  s.model = m;
  s.parallel = p;
  s.workload.seq_len = seq;
  s.workload.global_batch = global_batch;
  s.hbm_capacity_bytes = 80e9;
  s.peak_flops_per_gpu = kFlops;
  s.gpu_sms = kGpuSms;
  return s;
}

double ep_seconds(const GpuTimeAccount& a, bool hidden) {
  const auto& x = hidden ? a.hidden_s : a.exposed_s;
  return x[static_cast<int>(Category::kDispatch)] + x[static_cast<int>(Category::kCombine)];
}

// Two micro-batches, one MoE layer, ep = 2, pp = 1; every all-to-all takes D,
// everything else is free. Kernels: F_pre = attention + router forward, E /
// E_b the experts' forward / backward (E_w of it weight gradients, E_d = E_b -
// E_w), B_post = router + attention backward; unpermute and embeddings are
// memory-bound, hence free. c = 20/132 is the SMs' share communication takes,
// r = 1 - c what compute keeps.
//
// "none": every pass alone, every all-to-all exposed:
//   2 (F_pre + E + E_b + B_post) + 8 D.
// "1f1b" (combined_1f1b_schedule_for_no_pipelining): F(0) alone, then
// [F(1) & B(0)], then B(1) alone.
//   F(0) = F_pre + D + E + D.
//   The pair: combine_bwd(0) beside F_pre(1), dispatch(1) beside E_d(0),
//   dispatch_bwd(0) beside E_w(0) + E(1), combine(1) beside B_post(0). With D
//   small enough that each all-to-all ends inside the compute beside it
//   (D <= F_pre, E_d, E_w + E, B_post, all over r), all four are hidden and
//   each stretches its compute by D c:  F_pre + E_b + E + B_post + 4 D c.
//   B(1) = D + E_d + max(D, E_w + D c) + B_post: the dispatch's backward runs
//   beside the delayed weight gradients (--delay-wgrad-compute).
// Half of the eight all-to-alls are hidden in the pair, plus the part of
// B(1)'s dispatch backward that its weight gradients cover.
TEST_CASE("combined 1F1B hides the pair's four all-to-alls in a two-micro-batch toy",
          "[exec][overlap]") {
  const ModelShape m = tiny_moe(1);
  const LinearCost cost(kFlops, 1e30);
  ParallelConfig p;
  p.dp = 2;
  p.ep = 2;
  p.a2a_comm_sms = kCommSms;
  auto setup = setup_for(m, p, 256, 4);
  const StepRouting routing = routing_for(m, p, 256);
  LayerCostModel layer(m, p, setup.workload, routing[0], cost);
  const LayerKernelSeconds k = layer.kernels();
  const double expert = layer.expert_seconds(0, 0, 0, false)[0];
  const double expert_bwd = layer.expert_seconds(0, 0, 0, true)[0];
  const double expert_wgrad = layer.expert_seconds(0, 0, 0, true)[2];
  const double expert_dgrad = expert_bwd - expert_wgrad;
  const double pre = k.attention_fwd + k.router_fwd, post = k.router_bwd + k.attention_bwd;
  REQUIRE(k.unpermute_fwd < 1e-15);
  REQUIRE(expert_wgrad > 0);
  const double d = 0.5 * std::min({pre, expert_dgrad, post, expert_wgrad + expert});
  const double c = static_cast<double>(kCommSms) / kGpuSms, r = 1 - c;
  const auto a2a = [d](const coll::Collective& x) {
    return x.op == CollectiveOp::kAllToAllV ? d : 0.0;
  };

  const TrainingResult none = simulate_training(setup, routing, testing::hardware(cost, a2a));
  CHECK(none.mean_step_time_s ==
        Approx(2 * (pre + expert + expert_bwd + post) + 8 * d).margin(1e-12));

  setup.parallel.moe_a2a_overlap = MoeA2aOverlap::kOneFOneB;
  const TrainingResult over = simulate_training(setup, routing, testing::hardware(cost, a2a));
  const double first = pre + d + expert + d;
  const double pair = pre + expert_bwd + expert + post + 4 * d * c;
  const double last = d + expert_dgrad + std::max(d, expert_wgrad + d * c) + post;
  CHECK(over.mean_step_time_s == Approx(first + pair + last).margin(1e-9));

  // What B(1)'s weight gradients hide of its dispatch backward.
  const double wgrad_hides = std::min(d, expert_wgrad / r);
  for (const GpuTimeAccount& a : over.steps[0].execution.per_gpu) {
    CHECK(ep_seconds(a, true) == Approx(4 * d + wgrad_hides).margin(1e-9));
    CHECK(ep_seconds(a, false) == Approx(4 * d - wgrad_hides).margin(1e-9));
  }
  for (const GpuTimeAccount& a : none.steps[0].execution.per_gpu) {
    CHECK(ep_seconds(a, true) == 0);
    CHECK(ep_seconds(a, false) == Approx(8 * d).margin(1e-12));
  }

  // The SMs' cost: compute overlapped by communication lasts longer than its
  // kernel by exactly c per second of overlap.
  const TaskGraph& g = over.last_graph.graph;
  const ExecutionResult& ex = over.steps[0].execution;
  double stretch = 0;
  for (TaskId id = 0; id < g.size(); ++id) {
    const auto& t = g.task(id);
    if (t.gpu != 0 || t.collective != kNoCollective) continue;
    stretch += (ex.task_end[id] - ex.task_start(g, id) - t.duration).seconds();
  }
  const double wgrad_stretch = expert_wgrad < r * d ? expert_wgrad / r - expert_wgrad : d * c;
  CHECK(stretch == Approx(4 * d * c + wgrad_stretch).margin(1e-9));

  // What the timeline shows: in the pair, each micro-batch's all-to-alls run
  // while the other micro-batch's kernels run on the same GPU. Only there:
  // F(0) and B(1) run alone.
  int overlaps = 0;
  for (TaskId a = 0; a < g.size(); ++a) {
    const auto& comm = g.task(a);
    if (comm.gpu != 0 || comm.stream != Stream::kEpComm) continue;
    for (TaskId b = 0; b < g.size(); ++b) {
      const auto& kernel = g.task(b);
      if (kernel.gpu != 0 || kernel.collective != kNoCollective) continue;
      if (kernel.label.microbatch == comm.label.microbatch) continue;
      const SimTime from = max(ex.task_start(g, a), ex.task_start(g, b));
      const SimTime to = min(ex.task_end[a], ex.task_end[b]);
      if (to > from) {
        ++overlaps;
        break;
      }
    }
  }
  // combine_bwd(0) | F_pre(1), dispatch(1) | E_d(0), combine(1) | B_post(0);
  // dispatch_bwd(0) reaches E(1) only if E_w(0) ends first.
  CHECK(overlaps == (expert_wgrad / r < d ? 4 : 3));
}

// DualPipe with pp = 2 has no bubble ((pp/2 - 1)(F&B + B - 3W) = 0, DualPipe
// README): with free communication its step is one rank's compute, where
// 1F1B over the same 4 micro-batches idles (pp - 1)/(m + pp - 1) = 1/5 of it.
TEST_CASE("DualPipe, pp = 2: no pipeline bubble, both stage copies on each rank",
          "[exec][overlap]") {
  const ModelShape m = tiny_moe(4);
  const LinearCost cost(kFlops, 1e30);
  ParallelConfig p;
  p.dp = 2;
  p.ep = 2;
  p.pp = 2;
  p.a2a_comm_sms = kCommSms;
  auto setup = setup_for(m, p, 512, 8);
  const StepRouting routing = routing_for(m, p, 512);
  const auto free = [](const coll::Collective&) { return 0.0; };
  const TrainingResult plain = simulate_training(setup, routing, testing::hardware(cost, free));
  setup.parallel.moe_a2a_overlap = MoeA2aOverlap::kDualPipe;
  const TrainingResult dual = simulate_training(setup, routing, testing::hardware(cost, free));
  const TaskGraph& g = dual.last_graph.graph;
  std::vector<double> compute(g.gpus(), 0.0);
  std::vector<std::vector<int>> layers_seen(g.gpus());
  for (TaskId id = 0; id < g.size(); ++id) {
    const auto& t = g.task(id);
    if (t.collective != kNoCollective) continue;
    compute[t.gpu] += t.duration.seconds();
    if (t.label.layer >= 0) layers_seen[t.gpu].push_back(t.label.layer);
  }
  for (int gpu = 0; gpu < g.gpus(); ++gpu) {
    CHECK(compute[gpu] == Approx(compute[0]).epsilon(1e-12));
    // Both stages: every layer of the model runs on every rank.
    std::sort(layers_seen[gpu].begin(), layers_seen[gpu].end());
    layers_seen[gpu].erase(std::unique(layers_seen[gpu].begin(), layers_seen[gpu].end()),
                           layers_seen[gpu].end());
    CHECK(layers_seen[gpu] == std::vector<int>{0, 1, 2, 3});
  }
  CHECK(dual.mean_step_time_s == Approx(compute[0]).epsilon(1e-9));
  CHECK(dual.mean_step_time_s / plain.mean_step_time_s == Approx(4.0 / 5).epsilon(0.01));
  // The copies' gradients are summed between mirror ranks: one all-reduce
  // over {r, pp-1-r} per rank pair.
  int mirror_sums = 0;
  for (const CollectiveDesc& desc : dual.last_graph.collectives) {
    const auto& ranks = dual.last_graph.groups[desc.group];
    if (desc.op == CollectiveOp::kAllReduce && ranks.size() == 2 &&
        ranks[1] - ranks[0] == 2) {  // pp outermost: mirror of rank r is r + dp x tp
      ++mirror_sums;
    }
  }
  CHECK(mirror_sums == 2);
}

TEST_CASE("overlap modes give identical executions from the same inputs", "[exec][overlap]") {
  const ModelShape m = tiny_moe(4);
  const LinearCost cost(kFlops, 1e12);
  for (MoeA2aOverlap mode : {MoeA2aOverlap::kOneFOneB, MoeA2aOverlap::kDualPipe}) {
    ParallelConfig p;
    p.dp = 2;
    p.ep = 2;
    p.pp = 2;
    p.moe_a2a_overlap = mode;
    p.recompute = Recompute::kSelective;
    if (mode == MoeA2aOverlap::kOneFOneB) {
      p.schedule = PipelineSchedule::kInterleaved;
      p.virtual_stages = 2;
    }
    const auto setup = setup_for(m, p, 512, 8);
    const auto a2a = [](const coll::Collective& c) {
      if (c.ranks.size() <= 1) return 0.0;
      if (c.op == CollectiveOp::kAllToAllV) return testing::busiest_rank_bytes(c, true) / 1e11;
      return c.bytes / 1e11;
    };
    const auto x = simulate_training(setup, routing_for(m, p, 512), testing::hardware(cost, a2a));
    const auto y = simulate_training(setup, routing_for(m, p, 512), testing::hardware(cost, a2a));
    CHECK(x.steps[0].execution.task_end == y.steps[0].execution.task_end);
    CHECK(x.steps[0].execution.compute_start == y.steps[0].execution.compute_start);
  }
}

}  // namespace
}  // namespace moesim::exec
