#pragma once
// Routing of one MoE layer for one batch of tokens: for every token, its
// source rank and its top-k experts with gate weights (structure of arrays;
// copy c of token t is at index t * top_k + c, in descending gate weight).

#include <cstdint>
#include <vector>

namespace moesim::workloads {

struct RoutingBatch {
  int top_k = 0;
  int experts = 0;
  int64_t tokens = 0;
  std::vector<int32_t> source_rank;  // per token
  std::vector<int32_t> expert;       // per token copy
  std::vector<float> weight;         // per token copy

  void resize(int64_t n_tokens, int k, int n_experts) {
    tokens = n_tokens;
    top_k = k;
    experts = n_experts;
    source_rank.resize(n_tokens);
    expert.resize(n_tokens * k);
    weight.resize(n_tokens * k);
  }
};

}  // namespace moesim::workloads
