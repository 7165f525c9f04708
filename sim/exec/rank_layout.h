#pragma once
// Where each parallel dimension lives: global GPU rank <-> (tp, cp, dp, pp)
// coordinates, and the expert-parallel grid carved out of each pipeline
// stage's tp x cp x dp block, as in Megatron-Core (parallel_state.py: the
// decoder RankGenerator in order tp-cp-ep-dp-pp with ep = 1, the expert one in
// the same order with cp = 1 and tp = etp). Within a stage, ranks are numbered
//   q = tp_index + tp * (cp_index + cp * dp_index)
// and split as
//   etp_index = q mod etp, ep_index = (q / etp) mod ep, edp_index = q / (etp * ep),
// so an expert-parallel group spans tensor- and context-parallel ranks first.
// The stage index is the slowest coordinate (rank_order "tp-cp-ep-dp-pp", the
// default) or sits between cp and dp ("tp-cp-ep-pp-dp"). GPU rank r sits on
// node r / gpus_per_node.

#include <vector>

#include "sim/exec/step_inputs.h"

namespace moesim::exec {

struct RankCoords {
  int tp = 0, cp = 0, dp = 0, pp = 0;
  int etp = 0, ep = 0, edp = 0;
};

class RankLayout {
 public:
  explicit RankLayout(const ParallelConfig& parallel);

  int gpus() const { return parallel_.gpus(); }
  int rank(int tp, int cp, int dp, int pp) const;
  const RankCoords& coords(int rank) const { return coords_[rank]; }

  // Group members in index order (member i has that dimension's index i).
  std::vector<int> tp_group(int rank) const;
  std::vector<int> cp_group(int rank) const;  // context parallel: the ring, in ring order
  // Ranks holding the same dense parameters: data x context parallel, cp
  // fastest (dense gradients are reduced and the optimizer sharded over it).
  std::vector<int> dp_group(int rank) const;
  std::vector<int> ep_group(int rank) const;   // expert parallel
  std::vector<int> etp_group(int rank) const;  // expert tensor parallel
  std::vector<int> edp_group(int rank) const;  // expert data parallel
  // Index of the expert-parallel group `rank` belongs to, among all of them
  // (stage-major); used to vary routing samples between groups.
  int ep_group_index(int rank) const;

 private:
  int stage_local(int tp, int cp, int dp) const {
    return tp + parallel_.tp * (cp + parallel_.cp * dp);
  }
  int rank_of_stage_local(int q, int pp) const;

  ParallelConfig parallel_;
  std::vector<RankCoords> coords_;
};

}  // namespace moesim::exec
