#include "sim/exec/training_step.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>

#include <catch2/catch.hpp>

#include "sim/exec/layer_costs.h"
#include "sim/exec/memory_model.h"
#include "sim/exec/rank_layout.h"
#include "tests/exec/test_costs.h"

namespace moesim::exec {
namespace {

using testing::even_routing;
using testing::LinearCost;
using testing::tiny_moe;

constexpr double kFlops = 1e14;  // 100 TFLOP/s
constexpr double kBw = 1e12;     // 1 TB/s

// Collectives: free on one rank; otherwise all-to-allv by the busiest
// sender/receiver at 100 GB/s, the rest by bytes at 100 GB/s.
double simple_collective(const coll::Collective& c) {
  if (c.ranks.size() <= 1) return 0;
  if (c.op == CollectiveOp::kAllToAllV) return testing::busiest_rank_bytes(c, true) / 1e11;
  return c.bytes / 1e11;
}

double free_comm(const coll::Collective&) {
  return 0;
}

StepRouting routing_for(const ModelShape& m, const ParallelConfig& p, int64_t tokens_per_rank,
                        int hot = -1) {
  StepRouting r(1);
  for (int l = 0; l < m.moe_layers(); ++l) {
    LayerRouting lr;
    lr.layer = l;
    lr.samples.push_back(even_routing(p.ep, m.experts, tokens_per_rank, m.top_k, hot));
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
  return s;
}

TEST_CASE("one GPU, one MoE layer: the step is the sum of its kernels", "[exec][step]") {
  const ModelShape m = tiny_moe();
  ParallelConfig p;
  const LinearCost cost(kFlops, kBw);
  const auto setup = setup_for(m, p, 256, 1);
  const auto routing = routing_for(m, p, 256);
  const TrainingResult r =
      simulate_training(setup, routing, testing::hardware(cost, simple_collective));
  const TaskGraph& g = r.last_graph.graph;
  double sum = 0;
  double expert_fwd = -1;
  for (TaskId id = 0; id < g.size(); ++id) {
    const auto& t = g.task(id);
    if (t.collective != kNoCollective) continue;
    sum += t.duration.seconds();
    if (t.category == Category::kExpert && t.label.phase == Phase::kForward) {
      expert_fwd = t.duration.seconds();
    }
  }
  CHECK(r.mean_step_time_s == Approx(sum).epsilon(1e-9));
  // 256 tokens x top-2 over 8 experts: 64 copies each. Gate+up GEMM
  // (64 x 4096 x 1024) and down GEMM (64 x 1024 x 2048) per expert, plus the
  // SwiGLU activation's memory traffic (3 x 2048 BF16 values per copy).
  const double gemm = 8 * (2.0 * 64 * 4096 * 1024 + 2.0 * 64 * 1024 * 2048) / kFlops;
  const double act = 512 * 3.0 * 2048 * 2 / kBw;
  CHECK(expert_fwd == Approx(gemm + act).epsilon(1e-6));
}

// An MTP module (Megatron-Core MultiTokenPredictionLayer) on one GPU: its
// transformer layer costs a model layer's kernels, and around it run its
// entry (the shifted tokens' embedding, two norms, their concatenation and
// eh_proj, 2 x hidden -> hidden) and a second pass through the output head.
TEST_CASE("an MTP module adds a layer, its entry and a head pass", "[exec][step]") {
  const LinearCost cost(kFlops, kBw);
  ParallelConfig p;
  ModelShape one = tiny_moe(1), two = tiny_moe(2);
  one.vocab = two.vocab = 32000;
  ModelShape mtp = two;
  mtp.mtp_layers = 1;  // one model layer and the module's
  auto step = [&](const ModelShape& m) {
    return simulate_training(setup_for(m, p, 256, 1), routing_for(m, p, 256),
                             testing::hardware(cost, simple_collective))
        .mean_step_time_s;
  };
  TrainingWorkload w;
  w.seq_len = 256;
  const LayerKernelSeconds k =
      LayerCostModel(mtp, p, w, routing_for(mtp, p, 256)[0], cost).kernels();
  // 256 tokens of hidden 1,024 in BF16: the embedding reads and writes them,
  // each norm too, the concatenation copies two of them; eh_proj's GEMM.
  const double rows = 256.0 * 1024 * 2;
  CHECK(k.mtp_entry_fwd == Approx(2 * rows / kBw + 2 * 2 * rows / kBw + 2 * 2 * rows / kBw +
                                  2.0 * 256 * 1024 * 2048 / kFlops));
  CHECK(step(mtp) - step(two) ==
        Approx(k.mtp_entry_fwd + k.mtp_entry_bwd + k.head_fwd + k.head_bwd).epsilon(1e-9));
  CHECK(step(two) > step(one));
}

// A layout's standalone MTP stage (Megatron-Core v0.16, "...m|L"): the
// module's entry and layer run where the layout puts them; its head and loss
// run on the last stage beside the model's (gpt_model.py _postprocess), and
// the activations from the module's stage on, and their gradients back,
// carry its hidden states after the model's (p2p_communication.py
// mtp_standalone).
TEST_CASE("a standalone MTP stage sends its hidden states to the last stage's heads",
          "[exec][step]") {
  const LinearCost cost(kFlops, kBw);
  ModelShape m = tiny_moe(3);
  m.vocab = 32000;
  m.mtp_layers = 1;  // two model layers and the module's
  ParallelConfig p;
  p.pp = 2;
  p.schedule = PipelineSchedule::kInterleaved;
  p.virtual_stages = 2;
  // "Et|t|m|L": rank 0 holds stages 0 and 2, rank 1 stages 1 and 3.
  p.layout = {{1, 0, true, false}, {1, 0, false, false}, {0, 1, false, false}, {0, 0, false, true}};
  const auto routing = routing_for(m, p, 256);
  const TrainingResult r = simulate_training(setup_for(m, p, 256, 4), routing,
                                             testing::hardware(cost, simple_collective));
  TrainingWorkload w;
  w.seq_len = 256;
  const LayerKernelSeconds k = LayerCostModel(m, p, w, routing[0], cost).kernels();
  const StepGraph& s = r.last_graph;
  int heads[2] = {0, 0}, entries[2] = {0, 0};
  std::map<std::tuple<Phase, int, uint32_t>, double> received;  // (phase, chunk, gpu) -> bytes
  for (TaskId id = 0; id < s.graph.size(); ++id) {
    const auto& t = s.graph.task(id);
    if (t.category == Category::kPpComm) {
      const CollectiveDesc& d = s.collectives[s.graph.collective(t.collective).payload];
      const bool receiver = static_cast<int>(t.gpu) == s.groups[d.group][1];  // {from, to}
      if (receiver) received[{t.label.phase, t.label.chunk, t.gpu}] = d.bytes;
    }
    if (t.collective != kNoCollective || t.label.phase != Phase::kForward) continue;
    if (t.duration.seconds() == Approx(2 * k.head_fwd).epsilon(1e-6)) ++heads[t.gpu];
    if (t.duration.seconds() == Approx(k.mtp_entry_fwd).epsilon(1e-6)) ++entries[t.gpu];
  }
  // Four micro-batches: both heads on rank 1, the module's entry on rank 0.
  CHECK(heads[1] == 4);
  CHECK(heads[0] == 0);
  CHECK(entries[0] == 4);
  CHECK(entries[1] == 0);
  // 256 tokens of hidden 1,024 in BF16 between stages 0 and 1 and 1 and 2;
  // twice that between 2 and 3, both ways.
  const double one = 256.0 * 1024 * 2;
  CHECK(received[{Phase::kForward, 0, 1}] == Approx(one));
  CHECK(received[{Phase::kForward, 1, 0}] == Approx(one));
  CHECK(received[{Phase::kForward, 1, 1}] == Approx(2 * one));
  CHECK(received[{Phase::kBackward, 1, 0}] == Approx(2 * one));
  CHECK(received[{Phase::kBackward, 0, 1}] == Approx(one));
}

// Selective recompute as in Megatron-Core's --recompute-modules layernorm
// moe_act (what the memory model stops keeping): backward re-runs both norms
// (each reads and writes tokens x hidden BF16) and the routed experts'
// SwiGLU (reads gate and up, writes their product: 3 x expert_ffn per copy),
// and nothing else; core attention is not recomputed.
TEST_CASE("selective recompute re-runs exactly the norms and the expert activation",
          "[exec][step]") {
  const ModelShape m = tiny_moe();
  const LinearCost cost(kFlops, kBw);
  ParallelConfig p;
  auto setup = setup_for(m, p, 256, 1);
  const auto routing = routing_for(m, p, 256);
  const TrainingResult none =
      simulate_training(setup, routing, testing::hardware(cost, simple_collective));
  setup.parallel.recompute = Recompute::kSelective;
  const TrainingResult sel =
      simulate_training(setup, routing, testing::hardware(cost, simple_collective));
  const double norms = 2 * (2.0 * 256 * 1024 * 2) / kBw;
  const double act = 512 * 3.0 * 2048 * 2 / kBw;  // 256 tokens x top-2 copies
  CHECK(sel.mean_step_time_s - none.mean_step_time_s == Approx(norms + act).epsilon(1e-9));
  double recomputed = 0;
  const TaskGraph& g = sel.last_graph.graph;
  for (TaskId id = 0; id < g.size(); ++id) {
    if (g.task(id).label.phase == Phase::kRecompute) recomputed += g.task(id).duration.seconds();
  }
  CHECK(recomputed == Approx(norms + act).epsilon(1e-9));
}

TEST_CASE("doubling tp halves attention GEMM time and adds one all-reduce per block",
          "[exec][step]") {
  const ModelShape m = tiny_moe();
  const LinearCost cost(kFlops, 1e30);  // memory-bound kernels free: GEMMs only
  auto attention_time = [&](int tp, std::vector<CollectiveDesc>* colls) {
    ParallelConfig p;
    p.tp = tp;
    p.ep = 1;
    const auto setup = setup_for(m, p, 512, 1);
    const TrainingResult r = simulate_training(setup, routing_for(m, p, 512 / tp),
                                               testing::hardware(cost, simple_collective));
    const TaskGraph& g = r.last_graph.graph;
    double s = 0;
    for (TaskId id = 0; id < g.size(); ++id) {
      const auto& t = g.task(id);
      if (t.collective == kNoCollective && t.category == Category::kAttention && t.gpu == 0 &&
          t.label.phase == Phase::kForward) {
        s += t.duration.seconds();
      }
    }
    if (colls) *colls = r.last_graph.collectives;
    return s;
  };
  std::vector<CollectiveDesc> colls;
  const double t1 = attention_time(1, nullptr);
  const double t2 = attention_time(2, &colls);
  CHECK(t2 == Approx(t1 / 2).epsilon(1e-9));
  // Forward and backward each all-reduce the attention block's output:
  // tokens x hidden x 2 bytes.
  int all_reduces = 0;
  for (const auto& c : colls) {
    if (c.op == CollectiveOp::kAllReduce) {
      ++all_reduces;
      CHECK(c.bytes == 512.0 * 1024 * 2);
    }
  }
  CHECK(all_reduces == 2);
}

TEST_CASE("1F1B bubble fraction is (pp-1)/(m+pp-1) for uniform stages", "[exec][step]") {
  const ModelShape m = tiny_moe(4);
  const LinearCost cost(kFlops, 1e30);
  for (const auto& [pp, mbs] : {std::pair{4, 8}, std::pair{2, 6}, std::pair{4, 4}}) {
    ParallelConfig p;
    p.pp = pp;
    const auto setup = setup_for(m, p, 512, mbs);
    const TrainingResult r =
        simulate_training(setup, routing_for(m, p, 512), testing::hardware(cost, free_comm));
    double bubble = 0;
    for (const auto& acc : r.steps[0].execution.per_gpu) bubble += acc.bubble_s;
    bubble /= pp;
    INFO("pp=" << pp << " m=" << mbs);
    CHECK(bubble / r.mean_step_time_s == Approx(double(pp - 1) / (mbs + pp - 1)).epsilon(0.01));
  }
}

// The framework's host work between pipeline passes delays every forward and
// backward pass by o: with uniform stages and free transfers the 1F1B step is
// (m + pp - 1)(t_f + t_b) + (m + pp - 1) 2o, each GPU spends 2 m o waiting on
// its host (not busy), and without pipeline parallelism nothing changes.
TEST_CASE("pipeline pass overhead: (m + pp - 1) 2o on the step, 2 m o per GPU", "[exec][step]") {
  const ModelShape m = tiny_moe(4);
  const LinearCost cost(kFlops, 1e30);
  const double o = 1e-3;
  for (const auto& [pp, mbs] : {std::pair{4, 8}, std::pair{2, 6}, std::pair{1, 4}}) {
    ParallelConfig p;
    p.pp = pp;
    auto setup = setup_for(m, p, 512, mbs);
    const TrainingResult base =
        simulate_training(setup, routing_for(m, p, 512), testing::hardware(cost, free_comm));
    setup.framework.pipeline_pass_s = o;
    const TrainingResult with =
        simulate_training(setup, routing_for(m, p, 512), testing::hardware(cost, free_comm));
    INFO("pp=" << pp << " m=" << mbs);
    const double expect_extra = pp == 1 ? 0 : (mbs + pp - 1) * 2 * o;
    CHECK(with.mean_step_time_s - base.mean_step_time_s == Approx(expect_extra).epsilon(1e-6));
    for (int g = 0; g < pp; ++g) {
      const auto& a = with.steps[0].execution.per_gpu[g];
      const int framework = static_cast<int>(Category::kFramework);
      CHECK(a.exposed_s[framework] == Approx(pp == 1 ? 0 : 2 * mbs * o).epsilon(1e-9));
      CHECK(a.busy_s == Approx(base.steps[0].execution.per_gpu[g].busy_s).epsilon(1e-9));
    }
  }
}

// ZeRO-2/3 as Megatron-FSDP runs them (optim_grads / optim_grads_params):
// every backward of every micro-batch reduce-scatters each layer's gradients,
// and ZeRO-3 gathers each layer's dense and expert parameters before every
// forward and every backward (a recomputing backward gathers once). ZeRO-1
// reduces once per layer, after the last micro-batch.
TEST_CASE("ZeRO stages: gathers and reduce-scatters per layer and micro-batch", "[exec][step]") {
  const ModelShape m = tiny_moe(2);
  const LinearCost cost(kFlops, kBw);
  const int microbatches = 3;
  for (int zero : {1, 2, 3}) {
    for (Recompute recompute : {Recompute::kNone, Recompute::kFull}) {
      ParallelConfig p;
      p.dp = 4;
      p.ep = 2;  // expert-data-parallel degree 2
      p.zero_stage = zero;
      p.recompute = recompute;
      const auto setup = setup_for(m, p, 256, 4 * microbatches);
      const TrainingResult r = simulate_training(setup, routing_for(m, p, 256),
                                                 testing::hardware(cost, simple_collective));
      const StepGraph& step = r.last_graph;
      int gathers = 0, reduce_scatters = 0;
      double gathered_bytes = 0;
      for (TaskId id = 0; id < step.graph.size(); ++id) {
        const auto& t = step.graph.task(id);
        if (t.gpu != 0 || t.collective == kNoCollective) continue;
        const CollectiveDesc& d = step.collectives[step.graph.collective(t.collective).payload];
        if (d.op == CollectiveOp::kAllGather) {
          CHECK(t.stream == Stream::kParamGather);
          ++gathers;
          gathered_bytes += d.bytes;
        }
        if (d.op == CollectiveOp::kReduceScatter) ++reduce_scatters;
      }
      INFO("zero " << zero << " full recompute " << (recompute == Recompute::kFull));
      // Per layer: a dense bucket (dp 4) and an expert bucket (expert dp 2).
      CHECK(reduce_scatters == (zero >= 2 ? microbatches : 1) * 2 * 2);
      CHECK(gathers == (zero == 3 ? microbatches * 2 * 2 * 2 : 0));
      // BF16 parameters: attention and router, and 8 / ep = 4 local experts.
      const double per_layer = 2 * (4.0 * 1024 * 1024 + 1024.0 * 8 + 4 * 3.0 * 1024 * 2048);
      CHECK(gathered_bytes == Approx(zero == 3 ? microbatches * 2 * 2 * per_layer : 0));
    }
  }
}

// Every parameter a GPU holds has its gradient reduced over its data-parallel
// group once a step (ZeRO-1: reduce-scattered in FP32): the layers', the
// embedding's and the output layer's. Where the embedding is used on the last
// pipeline rank too (a tied output layer, or an MTP module), the first and
// last ranks then sum its whole FP32 gradient (Megatron-Core
// finalize_model_grads.py _allreduce_word_embedding_grads over
// default_embedding_ranks).
TEST_CASE("every parameter's gradient is reduced, the embedding's summed across the pipeline",
          "[exec][step]") {
  const LinearCost cost(kFlops, kBw);
  auto check = [&](ModelShape m, bool summed) {
    ParallelConfig p;
    p.dp = 2;
    p.pp = 2;
    p.zero_stage = 1;
    const TrainingResult r = simulate_training(setup_for(m, p, 256, 4), routing_for(m, p, 256),
                                               testing::hardware(cost, simple_collective));
    const StepGraph& step = r.last_graph;
    const RankLayout layout(p);
    for (int gpu = 0; gpu < p.gpus(); ++gpu) {
      double reduced = 0, embedding_sum = 0;
      for (TaskId id = 0; id < step.graph.size(); ++id) {
        const auto& t = step.graph.task(id);
        if (static_cast<int>(t.gpu) != gpu || t.stream != Stream::kDpComm) continue;
        const CollectiveDesc& d = step.collectives[step.graph.collective(t.collective).payload];
        if (d.op == CollectiveOp::kReduceScatter) reduced += d.bytes;
        if (d.op == CollectiveOp::kAllReduce) {
          const RankCoords& rc = layout.coords(gpu);
          CHECK(step.groups[d.group] == std::vector<int>{layout.rank(rc.tp, rc.cp, rc.dp, 0),
                                                         layout.rank(rc.tp, rc.cp, rc.dp, 1)});
          embedding_sum += d.bytes;
        }
      }
      const LocalParams local = local_params(m, p, layout.coords(gpu).pp);
      INFO("gpu " << gpu);
      CHECK(reduced == Approx(4 * (local.dense + local.experts)));
      CHECK(embedding_sum == Approx(summed ? 4 * m.embedding_params : 0));
    }
  };
  ModelShape untied = tiny_moe(2);
  untied.vocab = 32000;
  untied.embedding_params = untied.output_params = 32000.0 * 1024;
  check(untied, false);
  ModelShape tied = untied;
  tied.output_params = 0;
  check(tied, true);
  ModelShape mtp = tiny_moe(3);
  mtp.vocab = 32000;
  mtp.embedding_params = mtp.output_params = 32000.0 * 1024;
  mtp.mtp_layers = 1;
  mtp.mtp_module_params = 2.0 * 1024 * 1024 + 3 * 1024;
  check(mtp, true);
}

// Megatron-FSDP double-buffers its units (megatron_fsdp.md "Double
// Buffering"): at most two layers' parameters are unsharded at once, so a
// unit's gather starts only after the unit two gathers back is done (the
// last kernel of its layer's pass; with full recompute, of the layer's
// recompute and backward, which share one gather). Gathers far faster than
// the layers would otherwise run ahead of them.
TEST_CASE("ZeRO-3 gathers hold at most two units", "[exec][step]") {
  const ModelShape m = tiny_moe(4);
  const LinearCost cost(kFlops, kBw);
  auto fast_gathers = [](const coll::Collective& c) {
    return c.op == CollectiveOp::kAllGather ? c.bytes / 1e14 : simple_collective(c);
  };
  for (Recompute recompute : {Recompute::kNone, Recompute::kFull}) {
    ParallelConfig p;
    p.dp = 4;
    p.ep = 2;
    p.zero_stage = 3;
    p.recompute = recompute;
    const auto setup = setup_for(m, p, 256, 4 * 3);
    const TrainingResult r =
        simulate_training(setup, routing_for(m, p, 256), testing::hardware(cost, fast_gathers));
    const StepGraph& step = r.last_graph;
    const ExecutionResult& run = r.steps.back().execution;
    // GPU 0's units in gather order: (micro-batch, backward, layer), and when
    // each gather started; when each unit's last kernel ended.
    using Unit = std::tuple<int, bool, int>;
    std::vector<std::pair<Unit, SimTime>> gathers;
    std::map<Unit, SimTime> done;
    for (TaskId id = 0; id < step.graph.size(); ++id) {
      const auto& t = step.graph.task(id);
      if (t.gpu != 0 || t.label.layer < 0) continue;
      const Unit unit{t.label.microbatch, t.label.phase != Phase::kForward, t.label.layer};
      if (t.stream == Stream::kParamGather) {
        if (gathers.empty() || gathers.back().first != unit)
          gathers.push_back({unit, run.task_start(step.graph, id)});
      } else if (t.collective == kNoCollective) {
        done[unit] = std::max(done[unit], run.task_end[id]);
      }
    }
    INFO("full recompute " << (recompute == Recompute::kFull));
    // Per micro-batch one unit per layer and pass (forward; backward, with
    // or without its recompute).
    REQUIRE(gathers.size() == 3 * 2 * static_cast<size_t>(m.layers));
    for (size_t k = 2; k < gathers.size(); ++k) {
      INFO("unit " << k);
      CHECK(gathers[k].second >= done.at(gathers[k - 2].first));
    }
  }
}

TEST_CASE("routing everything to one expert puts its rank on the critical path", "[exec][step]") {
  const ModelShape m = tiny_moe(2);
  ParallelConfig p;
  p.dp = 4;
  p.ep = 4;
  const LinearCost cost(kFlops, kBw);
  const auto setup = setup_for(m, p, 1024, 4);
  for (int hot : {5, 1}) {
    const TrainingResult r = simulate_training(setup, routing_for(m, p, 1024, hot),
                                               testing::hardware(cost, simple_collective));
    // Expert `hot` lives on EP rank hot / 2 (2 experts per rank); with tp = 1
    // and dp = 4 the EP index is the DP index, i.e. the GPU rank.
    CHECK(r.steps[0].critical_path.expert_compute_gpu == hot / 2);
    // The other ranks wait for it in the combine.
    const auto& acc = r.steps[0].execution.per_gpu;
    const int other = (hot / 2 + 1) % 4;
    CHECK(acc[other].exposed_s[static_cast<int>(Category::kCombine)] >
          acc[hot / 2].exposed_s[static_cast<int>(Category::kCombine)]);
  }
}

TEST_CASE("the same inputs give identical executions", "[exec][step]") {
  const ModelShape m = tiny_moe(2);
  ParallelConfig p;
  p.dp = 2;
  p.pp = 2;
  p.ep = 2;
  p.a2a_overlap_chunks = 3;
  const LinearCost cost(kFlops, kBw);
  const auto setup = setup_for(m, p, 512, 8);
  const auto a =
      simulate_training(setup, routing_for(m, p, 512), testing::hardware(cost, simple_collective));
  const auto b =
      simulate_training(setup, routing_for(m, p, 512), testing::hardware(cost, simple_collective));
  CHECK(a.steps[0].execution.makespan == b.steps[0].execution.makespan);
  CHECK(a.steps[0].execution.task_end == b.steps[0].execution.task_end);
  CHECK(a.steps[0].events == b.steps[0].events);
}

TEST_CASE("splitting the all-to-all into chunks overlaps it with expert compute", "[exec][step]") {
  const ModelShape m = tiny_moe(1);
  const LinearCost cost(kFlops, kBw);
  auto step = [&](int chunks) {
    ParallelConfig p;
    p.dp = 4;
    p.ep = 4;
    p.a2a_overlap_chunks = chunks;
    const auto setup = setup_for(m, p, 4096, 4);
    return simulate_training(setup, routing_for(m, p, 4096),
                             testing::hardware(cost, simple_collective))
        .mean_step_time_s;
  };
  CHECK(step(4) < step(1));
}

}  // namespace
}  // namespace moesim::exec
