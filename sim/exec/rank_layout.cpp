#include "sim/exec/rank_layout.h"

namespace moesim::exec {

RankLayout::RankLayout(const ParallelConfig& parallel)
    : parallel_(parallel), coords_(parallel.gpus()) {
  const ParallelConfig& p = parallel_;
  for (int pp = 0; pp < p.pp; ++pp) {
    for (int dp = 0; dp < p.dp; ++dp) {
      for (int tp = 0; tp < p.tp; ++tp) {
        const int q = stage_local(tp, dp);
        RankCoords c{tp, dp, pp, q % p.etp, (q / p.etp) % p.ep, q / (p.etp * p.ep)};
        coords_[rank(tp, dp, pp)] = c;
      }
    }
  }
}

int RankLayout::rank(int tp, int dp, int pp) const {
  const ParallelConfig& p = parallel_;
  return p.pp_outer_of_dp ? tp + p.tp * (dp + p.dp * pp) : tp + p.tp * (pp + p.pp * dp);
}

int RankLayout::rank_of_stage_local(int q, int pp) const {
  return rank(q % parallel_.tp, q / parallel_.tp, pp);
}

std::vector<int> RankLayout::tp_group(int r) const {
  const RankCoords& c = coords_[r];
  std::vector<int> out;
  for (int t = 0; t < parallel_.tp; ++t) out.push_back(rank(t, c.dp, c.pp));
  return out;
}

std::vector<int> RankLayout::dp_group(int r) const {
  const RankCoords& c = coords_[r];
  std::vector<int> out;
  for (int d = 0; d < parallel_.dp; ++d) out.push_back(rank(c.tp, d, c.pp));
  return out;
}

std::vector<int> RankLayout::ep_group(int r) const {
  const RankCoords& c = coords_[r];
  const ParallelConfig& p = parallel_;
  std::vector<int> out;
  for (int e = 0; e < p.ep; ++e) {
    out.push_back(rank_of_stage_local(c.etp + p.etp * (e + p.ep * c.edp), c.pp));
  }
  return out;
}

std::vector<int> RankLayout::etp_group(int r) const {
  const RankCoords& c = coords_[r];
  const ParallelConfig& p = parallel_;
  std::vector<int> out;
  for (int t = 0; t < p.etp; ++t) {
    out.push_back(rank_of_stage_local(t + p.etp * (c.ep + p.ep * c.edp), c.pp));
  }
  return out;
}

std::vector<int> RankLayout::edp_group(int r) const {
  const RankCoords& c = coords_[r];
  const ParallelConfig& p = parallel_;
  std::vector<int> out;
  for (int d = 0; d < p.expert_dp(); ++d) {
    out.push_back(rank_of_stage_local(c.etp + p.etp * (c.ep + p.ep * d), c.pp));
  }
  return out;
}

int RankLayout::ep_group_index(int r) const {
  const RankCoords& c = coords_[r];
  const ParallelConfig& p = parallel_;
  return (c.pp * p.expert_dp() + c.edp) * p.etp + c.etp;
}

}  // namespace moesim::exec
