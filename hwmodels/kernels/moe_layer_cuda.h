#pragma once
// The reference MoE layer on an NVIDIA GPU. The device code lives in a module
// (libmoesim_cuda.so, built when CMake finds nvcc; see
// hwmodels/kernels/CMakeLists.txt) that these functions load on first use, so
// that only the commands that run on a GPU pay for the CUDA libraries. Same semantics as
// MoeLayer::forward: router GEMM + softmax/top-k on the device, permutation indices from the given
// routing (capacity dropping in token order), per-expert SwiGLU FFN through cuBLAS SGEMM,
// gate-weighted combine, shared experts. FP32.

#include <span>
#include <string>
#include <vector>

#include "hwmodels/kernels/moe_layer.h"

namespace moesim::kern::cuda {

// True when the CUDA module is there and loads; otherwise `why` says why not.
bool module_available(std::string* why);
// True when a CUDA device can be used; otherwise `why` says why not (no
// module, no driver, no device).
bool device_available(std::string* why);

struct CudaForwardResult {
  std::vector<float> out;     // [tokens, hidden]
  double median_seconds = 0;  // device time of one forward (CUDA events)
};

// Runs the layer `reps` times (after one warm-up) on the first device.
// `routing` null: dispatch follows the device router's own top-k.
// Throws moesim::Error when no device is available or a CUDA call fails.
CudaForwardResult forward(const MoeShape& shape, const MoeWeights& weights,
                          std::span<const float> x, const Routing* routing, int reps);

}  // namespace moesim::kern::cuda
