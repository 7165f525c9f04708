// Rank layout: where each parallel dimension lives, against hand-worked
// numbering (Megatron-Core's order, tp fastest; see rank_layout.h).

#include "sim/exec/rank_layout.h"

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
  CHECK(layout.rank(1, 2, 1) == 1 + 2 * (2 + 4 * 1));
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
  CHECK(layout.rank(0, 0, 1) == 2);
  CHECK(layout.rank(1, 3, 0) == 1 + 2 * (0 + 2 * 3));
  CHECK(layout.dp_group(0) == V{0, 4, 8, 12});
  // q = tp + 2 dp; etp index = q mod 2, ep index = (q / 2) mod 2, edp = q / 4.
  CHECK(layout.etp_group(0) == V{0, 1});
  CHECK(layout.ep_group(0) == V{0, 4});
  CHECK(layout.edp_group(0) == V{0, 8});
  CHECK(layout.coords(2).pp == 1);
}

}  // namespace
}  // namespace moesim::exec
