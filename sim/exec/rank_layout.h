#pragma once
// Where each parallel dimension lives: global GPU rank <-> (tp, dp, pp)
// coordinates, and the expert-parallel grid carved out of each pipeline
// stage's tp x dp block, as in Megatron-Core: within a stage, ranks are
// numbered q = tp_index + tp * dp_index and split as
//   etp_index = q mod etp, ep_index = (q / etp) mod ep, edp_index = q / (etp * ep).
// GPU rank r sits on node r / gpus_per_node.

#include <vector>

#include "sim/exec/step_inputs.h"

namespace moesim::exec {

struct RankCoords {
  int tp = 0, dp = 0, pp = 0;
  int etp = 0, ep = 0, edp = 0;
};

class RankLayout {
 public:
  explicit RankLayout(const ParallelConfig& parallel);

  int gpus() const { return parallel_.gpus(); }
  int rank(int tp, int dp, int pp) const;
  const RankCoords& coords(int rank) const { return coords_[rank]; }

  // Group members in index order (member i has that dimension's index i).
  std::vector<int> tp_group(int rank) const;
  std::vector<int> dp_group(int rank) const;   // attention / dense data parallel
  std::vector<int> ep_group(int rank) const;   // expert parallel
  std::vector<int> etp_group(int rank) const;  // expert tensor parallel
  std::vector<int> edp_group(int rank) const;  // expert data parallel
  // Index of the expert-parallel group `rank` belongs to, among all of them
  // (stage-major); used to vary routing samples between groups.
  int ep_group_index(int rank) const;

 private:
  int stage_local(int tp, int dp) const { return tp + parallel_.tp * dp; }
  int rank_of_stage_local(int q, int pp) const;

  ParallelConfig parallel_;
  std::vector<RankCoords> coords_;
};

}  // namespace moesim::exec
