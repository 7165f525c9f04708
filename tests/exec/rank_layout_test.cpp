// Rank layout: where each parallel dimension lives, against hand-worked
// numbering (Megatron-Core's order, tp fastest; see rank_layout.h).

#include "sim/exec/rank_layout.h"

#include <algorithm>

#include <catch2/catch.hpp>

namespace moesim::exec {
namespace {

using V = std::vector<int>;

// tp 2, dp 4, pp 2, ep 4: 16 GPUs. Stage-local q = tp + 2 dp; with etp 1,
// ep index = q mod 4 and edp index = q / 4. Rank order tp-ep-dp-pp puts pp
// slowest: rank = tp + 2 (dp + 4 pp).
TEST_CASE("rank layout tp2 dp4 pp2 ep4, rank order tp-ep-dp-pp", "[exec][layout]") {
  ParallelConfig p;
  p.tp = 2;
  p.dp = 4;
  p.pp = 2;
  p.ep = 4;
  const RankLayout layout(p);
  CHECK(layout.gpus() == 16);
  CHECK(layout.rank(1, 0, 2, 1) == 1 + 2 * (2 + 4 * 1));
  const RankCoords& c = layout.coords(13);  // tp 1, dp 2, pp 1: q = 5
  CHECK((c.tp == 1 && c.dp == 2 && c.pp == 1));
  CHECK((c.ep == 1 && c.edp == 1 && c.etp == 0));
  CHECK(layout.tp_group(0) == V{0, 1});
  CHECK(layout.dp_group(0) == V{0, 2, 4, 6});
  CHECK(layout.ep_group(0) == V{0, 1, 2, 3});
  CHECK(layout.ep_group(13) == V{12, 13, 14, 15});
  CHECK(layout.edp_group(0) == V{0, 4});
  CHECK(layout.etp_group(0) == V{0});
  // EP groups numbered stage-major: stage 1's first group comes after stage 0's two.
  CHECK(layout.ep_group_index(0) == 0);
  CHECK(layout.ep_group_index(4) == 1);
  CHECK(layout.ep_group_index(8) == 2);
}

// Rank order tp-ep-pp-dp: pp inside dp, rank = tp + 2 (pp + 2 dp); an expert
// tensor-parallel degree of 2 pairs the tp ranks.
TEST_CASE("rank layout with rank order tp-ep-pp-dp and etp 2", "[exec][layout]") {
  ParallelConfig p;
  p.tp = 2;
  p.dp = 4;
  p.pp = 2;
  p.ep = 2;
  p.etp = 2;
  p.pp_outer_of_dp = false;
  const RankLayout layout(p);
  CHECK(layout.rank(0, 0, 0, 1) == 2);
  CHECK(layout.rank(1, 0, 3, 0) == 1 + 2 * (0 + 2 * 3));
  CHECK(layout.dp_group(0) == V{0, 4, 8, 12});
  // q = tp + 2 dp; etp index = q mod 2, ep index = (q / 2) mod 2, edp = q / 4.
  CHECK(layout.etp_group(0) == V{0, 1});
  CHECK(layout.ep_group(0) == V{0, 4});
  CHECK(layout.edp_group(0) == V{0, 8});
  CHECK(layout.coords(2).pp == 1);
}

// Context parallelism, Megatron-Core's default order tp-cp-ep-dp-pp: tp 2,
// cp 2, dp 2, pp 2 (16 GPUs), rank = tp + 2 (cp + 2 (dp + 2 pp)). The expert
// grid takes the stage's tp x cp x dp = 8 ranks, q = tp + 2 (cp + 2 dp), and
// splits them as etp, ep, edp (parallel_state.py: the expert RankGenerator has
// cp = 1 and the same order): with ep 4, ep index = q mod 4 and edp = q / 4,
// so an EP group spans both tensor- and context-parallel ranks. Dense
// gradients reduce over data x context parallel ranks (cp fastest).
TEST_CASE("rank layout with context parallelism", "[exec][layout][cp]") {
  ParallelConfig p;
  p.tp = 2;
  p.cp = 2;
  p.dp = 2;
  p.pp = 2;
  p.ep = 4;
  const RankLayout layout(p);
  CHECK(layout.gpus() == 16);
  CHECK(p.expert_dp() == 2);
  CHECK(p.dense_dp() == 4);
  CHECK(layout.rank(1, 1, 0, 0) == 3);
  CHECK(layout.rank(0, 1, 1, 1) == 0 + 2 * (1 + 2 * (1 + 2 * 1)));
  const RankCoords& c = layout.coords(11);  // tp 1, cp 1, dp 0, pp 1: q = 3
  CHECK((c.tp == 1 && c.cp == 1 && c.dp == 0 && c.pp == 1));
  CHECK((c.ep == 3 && c.edp == 0));
  CHECK(layout.tp_group(2) == V{2, 3});
  CHECK(layout.cp_group(1) == V{1, 3});
  CHECK(layout.cp_group(5) == V{5, 7});
  CHECK(layout.dp_group(0) == V{0, 2, 4, 6});
  CHECK(layout.ep_group(0) == V{0, 1, 2, 3});
  CHECK(layout.ep_group(6) == V{4, 5, 6, 7});
  CHECK(layout.edp_group(1) == V{1, 5});
  // Every rank is placed exactly once.
  std::vector<int> seen(16, 0);
  for (int r = 0; r < 16; ++r) {
    const RankCoords& k = layout.coords(r);
    ++seen[layout.rank(k.tp, k.cp, k.dp, k.pp)];
    CHECK(layout.rank(k.tp, k.cp, k.dp, k.pp) == r);
  }
  CHECK(std::count(seen.begin(), seen.end(), 1) == 16);
}

// Pipeline stage inside data parallel (tp-cp-ep-pp-dp): rank = tp + 2 (cp +
// 2 (pp + 2 dp)); the context-parallel ring stays within a stage.
TEST_CASE("rank layout with context parallelism, pp inside dp", "[exec][layout][cp]") {
  ParallelConfig p;
  p.tp = 2;
  p.cp = 2;
  p.dp = 2;
  p.pp = 2;
  p.ep = 4;
  p.pp_outer_of_dp = false;
  const RankLayout layout(p);
  CHECK(layout.rank(1, 1, 1, 0) == 1 + 2 * (1 + 2 * (0 + 2 * 1)));
  CHECK(layout.cp_group(4) == V{4, 6});
  CHECK(layout.coords(4).pp == 1);
  CHECK(layout.dp_group(0) == V{0, 2, 8, 10});
}

}  // namespace
}  // namespace moesim::exec
