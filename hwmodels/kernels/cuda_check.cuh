#pragma once
// Error checks shared by the CUDA module's device code (moe_layer_cuda_raw.cu,
// cuda_timer_raw.cu): a failed CUDA or cuBLAS call becomes a
// std::runtime_error naming the call, which the module's C boundary
// (cuda_module.cpp) turns into text.

#include <stdexcept>
#include <string>

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace moesim::kern::cuda_raw {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("cuda: ") + what + ": " + cudaGetErrorString(e));
}

inline void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cublas: ") + what + ": " + cublasGetStatusString(s) +
                             " (status " + std::to_string(static_cast<int>(s)) + ")");
  }
}

}  // namespace moesim::kern::cuda_raw
