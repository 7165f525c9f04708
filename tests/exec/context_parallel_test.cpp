// Context parallelism's ring attention and activation offload in the step
// graph, against closed forms worked from the task durations the graph itself
// carries (step_builder.h describes both mechanisms).

#include <algorithm>
#include <vector>

#include <catch2/catch.hpp>

#include "sim/exec/memory_model.h"
#include "sim/exec/training_step.h"
#include "tests/exec/test_costs.h"

namespace moesim::exec {
namespace {

using testing::LinearCost;
using testing::tiny_moe;

constexpr double kFlops = 1e14;  // 100 TFLOP/s
constexpr double kBw = 1e12;     // 1 TB/s

StepRouting even_routing_for(const ModelShape& m, int ep, int64_t tokens_per_rank) {
  StepRouting r(1);
  for (int l = 0; l < m.moe_layers(); ++l) {
    LayerRouting lr;
    lr.layer = l;
    lr.samples.push_back(testing::even_routing(ep, m.experts, tokens_per_rank, m.top_k));
    r[0].push_back(lr);
  }
  return r;
}

TrainingStepSetup setup_for(const ModelShape& m, const ParallelConfig& p, int64_t seq) {
  TrainingStepSetup s;
  s.model = m;
  s.parallel = p;
  s.workload.seq_len = seq;
  s.workload.global_batch = 1;
  s.hbm_capacity_bytes = 80e9;
  s.peak_flops_per_gpu = kFlops;
  return s;
}

struct TaskTimes {
  TaskId id;
  double start_s, end_s;
  double seconds() const { return end_s - start_s; }
};

// GPU 0's tasks of one category and phase, in the order they were added.
std::vector<TaskTimes> tasks_of(const TrainingResult& r, Category category, Phase phase) {
  const TaskGraph& g = r.last_graph.graph;
  const ExecutionResult& x = r.steps.back().execution;
  std::vector<TaskTimes> out;
  for (TaskId id = 0; id < g.size(); ++id) {
    const auto& t = g.task(id);
    if (t.gpu != 0 || t.category != category || t.label.phase != phase) continue;
    out.push_back({id, x.task_start(g, id).seconds(), x.task_end[id].seconds()});
  }
  return out;
}

// Ring attention, cp = 4, one layer of the tiny model, 1,024 tokens: each
// rank holds 256, and a ring step passes a K/V block of 256 tokens x 2 x 8
// heads x 128 x 2 bytes = 1 MiB (backward: K/V and dK/dV together, 2 MiB, but
// K/V alone at the first step and dK/dV alone at the last). The timer sends a
// ring step's busiest rank's bytes at `ring_bytes_per_s`; everything else
// communicates for free, so the attention ring alone sets the time.
//   forward:  first block + (cp - 1) x max(block, transfer)
//   backward: sum over steps of max(block, that step's transfer)
TEST_CASE(
    "ring attention time is the first block plus cp - 1 steps of the slower of block "
    "and transfer",
    "[exec][cp]") {
  const ModelShape m = tiny_moe(1);
  ParallelConfig p;
  p.cp = 4;
  const LinearCost cost(kFlops, kBw);
  const TrainingStepSetup setup = setup_for(m, p, 1024);
  const StepRouting routing = even_routing_for(m, 1, 256);
  const double block_bytes = 256.0 * 2 * 8 * 128 * 2;
  CHECK(block_bytes == 1 << 20);
  // At 1 TB/s a transfer (1.05 us) hides behind a block (2.1 us: reading Q,
  // K, V and writing O, 2 MiB at 1 TB/s); at 10 GB/s (105 us) it does not.
  for (const auto& [ring_bytes_per_s, hidden] : {std::pair{1e12, true}, std::pair{1e10, false}}) {
    INFO("ring at " << ring_bytes_per_s << " B/s");
    auto timer = [&](const coll::Collective& c) {
      if (c.op != CollectiveOp::kAllToAllV || c.ranks.size() != 4) return 0.0;
      return testing::busiest_rank_bytes(c, false) / ring_bytes_per_s;
    };
    const TrainingResult r = simulate_training(setup, routing, testing::hardware(cost, timer));
    const double t = block_bytes / ring_bytes_per_s;

    // Forward: the attention block's kernels are [pre, 4 ring steps, post].
    const auto fwd = tasks_of(r, Category::kAttention, Phase::kForward);
    REQUIRE(fwd.size() == 6);
    const double block = fwd[1].seconds();
    for (int i = 1; i <= 4; ++i) CHECK(fwd[i].seconds() == Approx(block).epsilon(1e-9));
    const auto ring_fwd = tasks_of(r, Category::kCpComm, Phase::kForward);
    REQUIRE(ring_fwd.size() == 3);  // cp - 1 transfers
    for (const TaskTimes& x : ring_fwd) CHECK(x.seconds() == Approx(t).epsilon(1e-6));
    const double ring_span = fwd[4].end_s - fwd[1].start_s;
    CHECK(ring_span == Approx(block + 3 * std::max(block, t)).epsilon(1e-6));
    CHECK((t < block) == hidden);
    if (hidden) {
      CHECK(ring_span == Approx(4 * block).epsilon(1e-6));  // transfers hidden
    } else {
      CHECK(ring_span == Approx(block + 3 * t).epsilon(1e-6));  // transfers exposed
    }
    // The step's first transfer starts with the first block, after the QKV
    // projections.
    CHECK(ring_fwd[0].start_s == Approx(fwd[0].end_s).epsilon(1e-9));

    // Backward: [output projection, 4 ring steps, QKV projections]; the
    // projections wait for the last transfer (the final dK, dV).
    const auto bwd = tasks_of(r, Category::kAttention, Phase::kBackward);
    REQUIRE(bwd.size() == 6);
    const double block_bwd = bwd[1].seconds();
    const auto ring_bwd = tasks_of(r, Category::kCpComm, Phase::kBackward);
    REQUIRE(ring_bwd.size() == 4);
    const double steps[] = {t, 2 * t, 2 * t, t};
    double expected = 0;
    for (int i = 0; i < 4; ++i) {
      CHECK(ring_bwd[i].seconds() == Approx(steps[i]).epsilon(1e-6));
      expected += std::max(block_bwd, steps[i]);
    }
    CHECK(bwd[5].start_s - bwd[1].start_s == Approx(expected).epsilon(1e-6));

    // What compute waited for is exposed context-parallel communication.
    const double exposed =
        r.steps.back().execution.per_gpu[0].exposed_s[static_cast<int>(Category::kCpComm)];
    double waited = 3 * std::max(0.0, t - block);
    for (double s : steps) waited += std::max(0.0, s - block_bwd);
    CHECK(exposed == Approx(waited).margin(1e-12));
  }
}

// Every GPU computes the causal attention of its seq / cp queries against the
// whole sequence: with load balancing, 1/cp of the whole; the rest of the
// layer sees seq / cp tokens.
TEST_CASE("context parallelism divides each GPU's attention and token work by cp", "[exec][cp]") {
  const ModelShape m = tiny_moe(1);
  const LinearCost cost(kFlops, kBw);
  auto free_comm = [](const coll::Collective&) { return 0.0; };
  auto attention_and_expert = [&](int cp) {
    ParallelConfig p;
    p.cp = cp;
    const TrainingResult r =
        simulate_training(setup_for(m, p, 1024), even_routing_for(m, 1, 1024 / cp),
                          testing::hardware(cost, free_comm));
    double attention_core = 0, expert = 0;
    for (const TaskTimes& x : tasks_of(r, Category::kAttention, Phase::kForward)) {
      attention_core += x.seconds();
    }
    for (const TaskTimes& x : tasks_of(r, Category::kExpert, Phase::kForward)) {
      expert += x.seconds();
    }
    return std::make_pair(attention_core, expert);
  };
  const auto [attention_1, expert_1] = attention_and_expert(1);
  const auto [attention_2, expert_2] = attention_and_expert(2);
  CHECK(expert_2 == Approx(expert_1 / 2).epsilon(1e-9));
  // Attention: projections halve; core attention halves in FLOPs (each of
  // the 2 steps does a quarter), while each step reads a whole Q and K/V
  // block; the merge of the partial outputs comes on top.
  CHECK(attention_2 < attention_1);
  CHECK(attention_2 > attention_1 / 2);
}

// Activation offload of core_attn (Q, K, V, O: (8 + 16) x 128 x 2 + 8 x 128 x 2
// = 8,192 bytes per token, 2 MiB for 256 tokens), one GPU, two layers, one
// micro-batch. Its backward follows its forward at once, so the last layer
// keeps its tensors (Megatron-Core keeps the chunk's last group); layer 0's
// go out after its attention and come back once layer 1's attention backward
// ends, and layer 0's attention backward waits for them. Between the two lies
// layer 0's MoE backward (M seconds of compute): the reload is hidden while it
// takes at most M, and exposes the rest.
TEST_CASE("offloaded activations reload behind compute, or expose the rest", "[exec][offload]") {
  const ModelShape m = tiny_moe(2);
  ParallelConfig p;
  const LinearCost cost(kFlops, kBw);
  auto free_comm = [](const coll::Collective&) { return 0.0; };
  const StepRouting routing = even_routing_for(m, 1, 256);
  const TrainingResult plain =
      simulate_training(setup_for(m, p, 256), routing, testing::hardware(cost, free_comm));
  const auto attention_bwd = tasks_of(plain, Category::kAttention, Phase::kBackward);
  REQUIRE(attention_bwd.size() == 2);  // layer 1, then layer 0
  const double moe_backward = attention_bwd[1].start_s - attention_bwd[0].end_s;  // M
  CHECK(moe_backward > 0);

  p.offload_modules = 1u << static_cast<int>(OffloadModule::kCoreAttn);
  const double bytes = 256.0 * 8192;
  CHECK(layer_saved_bytes(m, p, hw::DType::kBf16, 0).offloaded_attention_per_token == 8192);
  for (const double link : {bytes / (0.5 * moe_backward), bytes / (1.5 * moe_backward)}) {
    const double copy = bytes / link;
    INFO("copy " << copy << " s against " << moe_backward << " s of compute");
    TrainingStepSetup s = setup_for(m, p, 256);
    s.host_link_bytes_per_s = link;
    const TrainingResult r = simulate_training(s, routing, testing::hardware(cost, free_comm));
    const auto out = tasks_of(r, Category::kOffload, Phase::kForward);
    const auto in = tasks_of(r, Category::kReload, Phase::kBackward);
    REQUIRE(out.size() == 1);  // layer 0's only
    REQUIRE(in.size() == 1);
    CHECK(out[0].seconds() == Approx(copy).margin(1e-11));  // whole picoseconds
    CHECK(in[0].seconds() == Approx(copy).margin(1e-11));
    // The copy out ends long before the reload is due.
    const auto offloaded_bwd = tasks_of(r, Category::kAttention, Phase::kBackward);
    CHECK(out[0].end_s < offloaded_bwd[0].end_s);
    CHECK(in[0].start_s == Approx(offloaded_bwd[0].end_s).epsilon(1e-9));
    const double exposed = std::max(0.0, copy - moe_backward);
    CHECK(r.mean_step_time_s == Approx(plain.mean_step_time_s + exposed).epsilon(1e-9));
    const GpuTimeAccount& a = r.steps.back().execution.per_gpu[0];
    CHECK(a.exposed_s[static_cast<int>(Category::kReload)] == Approx(exposed).margin(1e-12));
    CHECK(a.exposed_s[static_cast<int>(Category::kOffload)] == 0);  // never waited for
    CHECK(a.hidden_s[static_cast<int>(Category::kOffload)] == Approx(copy).margin(1e-11));
  }
}

}  // namespace
}  // namespace moesim::exec
