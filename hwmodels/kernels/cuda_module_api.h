#pragma once
// The boundary between moesim and its CUDA module (libmoesim_cuda.so, built
// from moe_layer_cuda_raw.cu when nvcc is found). The module is loaded with
// dlopen only by the commands that use a GPU, so that no other command pays
// for initialising the CUDA runtime and cuBLAS (hundreds of milliseconds and
// megabytes at every start). C linkage and plain types only: errors come back
// as text in the caller's buffer, never as exceptions across the boundary.

#include <cstddef>
#include <cstdint>

extern "C" {

inline constexpr int kMoesimCudaApiVersion = 1;

struct MoesimCudaLayerDims {
  int64_t tokens, hidden, ffn, experts, top_k, shared_ffn;
  int normalize_top_k;  // 0 or 1
};

struct MoesimCudaApi {
  int version;  // kMoesimCudaApiVersion
  // 1 when a CUDA device is usable; otherwise 0 with the reason in `why`.
  int (*device_available)(char* why, size_t why_size);
  // Each returns 0 on success, else 1 with a message in `error`; semantics as
  // moesim::kern::cuda_raw::route / forward (moe_layer_cuda_raw.h).
  int (*route)(const MoesimCudaLayerDims* dims, const float* x, const float* router,
               int32_t* expert, float* weight, char* error, size_t error_size);
  int (*forward)(const MoesimCudaLayerDims* dims, const float* x, const float* router,
                 const float* const* w_gate_up, const float* const* w_down,
                 const float* shared_gate_up, const float* shared_down, const int64_t* offsets,
                 const int32_t* perm_token, const int64_t* row_of, const float* weight, int reps,
                 float* out, double* median_seconds, char* error, size_t error_size);
};

// The module's one exported symbol.
const MoesimCudaApi* moesim_cuda_api();
typedef const MoesimCudaApi* (*MoesimCudaApiFn)();
}
