#include "sim/exec/rank_layout.h"

namespace moesim::exec {

RankLayout::RankLayout(const ParallelConfig& parallel)
    : parallel_(parallel), coords_(parallel.gpus()) {
  const ParallelConfig& p = parallel_;
  for (int pp = 0; pp < p.pp; ++pp) {
    for (int dp = 0; dp < p.dp; ++dp) {
      for (int cp = 0; cp < p.cp; ++cp) {
        for (int tp = 0; tp < p.tp; ++tp) {
          const int q = stage_local(tp, cp, dp);
          RankCoords c{tp, cp, dp, pp, q % p.etp, (q / p.etp) % p.ep, q / (p.etp * p.ep)};
          coords_[rank(tp, cp, dp, pp)] = c;
        }
      }
    }
  }
}

int RankLayout::rank(int tp, int cp, int dp, int pp) const {
  const ParallelConfig& p = parallel_;
  const int tp_cp = tp + p.tp * cp;
  return p.pp_outer_of_dp ? tp_cp + p.tp * p.cp * (dp + p.dp * pp)
                          : tp_cp + p.tp * p.cp * (pp + p.pp * dp);
}

int RankLayout::rank_of_stage_local(int q, int pp) const {
  const ParallelConfig& p = parallel_;
  return rank(q % p.tp, (q / p.tp) % p.cp, q / (p.tp * p.cp), pp);
}

std::vector<int> RankLayout::tp_group(int r) const {
  const RankCoords& c = coords_[r];
  std::vector<int> out;
  for (int t = 0; t < parallel_.tp; ++t) out.push_back(rank(t, c.cp, c.dp, c.pp));
  return out;
}

std::vector<int> RankLayout::cp_group(int r) const {
  const RankCoords& c = coords_[r];
  std::vector<int> out;
  for (int i = 0; i < parallel_.cp; ++i) out.push_back(rank(c.tp, i, c.dp, c.pp));
  return out;
}

std::vector<int> RankLayout::dp_group(int r) const {
  const RankCoords& c = coords_[r];
  std::vector<int> out;
  for (int d = 0; d < parallel_.dp; ++d) {
    for (int i = 0; i < parallel_.cp; ++i) out.push_back(rank(c.tp, i, d, c.pp));
  }
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
