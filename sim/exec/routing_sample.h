#pragma once
// Turning token-level routing (after gating) into what a step needs: per
// expert-parallel group and layer, who sends how many token copies to whom
// and what each rank's local experts receive.

#include <cstdint>
#include <span>
#include <vector>

#include "sim/exec/step_inputs.h"

namespace moesim::exec {

// Accumulates routed token copies of one layer for one expert-parallel group.
// Expert slots are placed contiguously: slot s lives on EP rank
// s / slots_per_rank (with replication, the gating policy maps experts to slots).
class RoutingSampleBuilder {
 public:
  RoutingSampleBuilder(int ep, int slots);
  // One token copy from `source_rank` (0..ep-1) kept for `slot`, weighted by
  // `copies` (token subsampling scales counts up).
  void add(int source_rank, int slot, int64_t copies = 1) {
    const int dst = slot / slots_per_rank_;
    sample_.pair_tokens[static_cast<size_t>(source_rank) * sample_.ep + dst] += copies;
    sample_.expert_tokens[slot] += copies;
    sample_.routed += copies;
  }
  // A token from `source_rank` with at least one kept copy on `dst_rank`.
  void add_unique(int source_rank, int dst_rank, int64_t tokens = 1) {
    sample_.pair_tokens_dedup[static_cast<size_t>(source_rank) * sample_.ep + dst_rank] += tokens;
  }
  void add_dropped(int64_t copies) { sample_.dropped += copies; }
  void add_tokens_in(int64_t tokens) { sample_.tokens_in += tokens; }
  RoutingSample take() { return std::move(sample_); }

 private:
  int slots_per_rank_;
  RoutingSample sample_;
};

}  // namespace moesim::exec
