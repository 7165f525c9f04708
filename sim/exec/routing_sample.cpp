#include "sim/exec/routing_sample.h"

#include <stdexcept>

namespace moesim::exec {

RoutingSampleBuilder::RoutingSampleBuilder(int ep, int slots) {
  if (ep <= 0 || slots % ep != 0) {
    throw std::logic_error("RoutingSampleBuilder: slots must be a multiple of ep");
  }
  slots_per_rank_ = slots / ep;
  sample_.ep = ep;
  sample_.local_experts = slots_per_rank_;
  sample_.pair_tokens.assign(static_cast<size_t>(ep) * ep, 0);
  sample_.pair_tokens_dedup.assign(static_cast<size_t>(ep) * ep, 0);
  sample_.expert_tokens.assign(slots, 0);
}

}  // namespace moesim::exec
