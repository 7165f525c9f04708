// The CUDA module's side of cuda_module_api.h: wraps the raw CUDA layer
// (moe_layer_cuda_raw.cu) behind C functions that turn exceptions into text.

#include <cstdio>
#include <exception>
#include <string>

#include "hwmodels/kernels/cuda_module_api.h"
#include "hwmodels/kernels/moe_layer_cuda_raw.h"

namespace {

using moesim::kern::cuda_raw::LayerDims;

LayerDims dims_of(const MoesimCudaLayerDims* d) {
  return LayerDims{
      d->tokens, d->hidden, d->ffn, d->experts, d->top_k, d->shared_ffn, d->normalize_top_k != 0};
}

void copy_message(const char* text, char* out, size_t size) {
  if (size > 0) std::snprintf(out, size, "%s", text);
}

int device_available(char* why, size_t why_size) {
  std::string reason;
  try {
    if (moesim::kern::cuda_raw::device_available(&reason)) return 1;
  } catch (const std::exception& e) {
    reason = e.what();
  }
  copy_message(reason.c_str(), why, why_size);
  return 0;
}

int route(const MoesimCudaLayerDims* d, const float* x, const float* router, int32_t* expert,
          float* weight, char* error, size_t error_size) {
  try {
    moesim::kern::cuda_raw::route(dims_of(d), x, router, expert, weight);
    return 0;
  } catch (const std::exception& e) {
    copy_message(e.what(), error, error_size);
    return 1;
  }
}

int forward(const MoesimCudaLayerDims* d, const float* x, const float* router,
            const float* const* w_gate_up, const float* const* w_down, const float* shared_gate_up,
            const float* shared_down, const int64_t* offsets, const int32_t* perm_token,
            const int64_t* row_of, const float* weight, int reps, float* out,
            double* median_seconds, char* error, size_t error_size) {
  try {
    *median_seconds = moesim::kern::cuda_raw::forward(dims_of(d), x, router, w_gate_up, w_down,
                                                      shared_gate_up, shared_down, offsets,
                                                      perm_token, row_of, weight, reps, out);
    return 0;
  } catch (const std::exception& e) {
    copy_message(e.what(), error, error_size);
    return 1;
  }
}

const MoesimCudaApi kApi = {kMoesimCudaApiVersion, device_available, route, forward};

}  // namespace

extern "C" __attribute__((visibility("default"))) const MoesimCudaApi* moesim_cuda_api() {
  return &kApi;
}
