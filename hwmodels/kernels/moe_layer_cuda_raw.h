#pragma once
// Raw C++17 interface of the CUDA layer (device code in moe_layer_cuda_raw.cu).
// Callers use moe_layer_cuda.h; this layer takes plain arrays so nvcc never
// sees the C++20 headers. Errors are std::runtime_error.

#include <cstdint>
#include <string>

namespace moesim::kern::cuda_raw {

struct LayerDims {
  int64_t tokens, hidden, ffn, experts, top_k, shared_ffn;
  bool normalize_top_k;
};

bool device_available(std::string* why);

// Router GEMM + softmax/top-k on the device; writes expert[tokens*top_k],
// weight[tokens*top_k] on the host.
void route(const LayerDims& d, const float* x, const float* router, int32_t* expert, float* weight);

// The whole layer, timed with CUDA events: one warm-up then `reps` runs.
// offsets[experts+1] are grouped-row prefix sums, perm_token[kept] the token
// of each grouped row, row_of[tokens*top_k] the grouped row of each
// assignment (-1: dropped), weight[tokens*top_k] its gate weight.
// Returns the median seconds; writes out[tokens*hidden].
double forward(const LayerDims& d, const float* x, const float* router,
               const float* const* w_gate_up, const float* const* w_down,
               const float* shared_gate_up, const float* shared_down, const int64_t* offsets,
               const int32_t* perm_token, const int64_t* row_of, const float* weight, int reps,
               float* out);

}  // namespace moesim::kern::cuda_raw
