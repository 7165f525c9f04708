#pragma once
// Raw C++17 side of the CUDA kernel timer (device code in cuda_timer_raw.cu),
// behind the module's C boundary (cuda_module_api.h, version 2). Callers use
// gpu_timer.h. Errors are std::runtime_error.
//
// What is timed, and how:
// - GEMM: one cublasLtMatmul in the operation's dtype, "TN" (a linear layer:
//   out[m, n] = activations[m, k] * weight[n, k]^T), FP32 accumulation, the
//   first algorithm of cuBLASLt's heuristic with a 32 MiB workspace. FP8 is
//   E4M3 x E4M3 -> BF16 without scaling factors (unit scales), default
//   (not fast) accumulation.
// - Grouped GEMM: `groups` such GEMMs of equal shape, each with its own
//   weight, in one cublasGemmGroupedBatchedEx launch (no FP8 in cuBLAS 13.1).
// - Copy: a kernel copying bytes / 2 from one buffer to another, 16 bytes
//   per thread and step.
// - Empty kernel: one block of one thread that does nothing.
// Each weight (and each copy's source) is taken at a new place, call after
// call, in a pool of at least four times the L2 cache, so it comes from HBM
// as a layer's expert weights do; activations and outputs stay in place.
// Operands hold random finite values of every dtype (bytes 0x20-0x3F with a
// random sign bit are finite normal numbers read as FP32, BF16, FP16 or E4M3).
// A sample is `calls` launches back to back on one stream between two CUDA
// events: device time, including any gap the host leaves between launches of
// kernels shorter than a launch (what a stream of kernels sees).

#include <cstdint>
#include <memory>
#include <string>

#include "hwmodels/kernels/cuda_module_api.h"

namespace moesim::kern::cuda_raw {

// The first device's name, compute capability, memory and library versions.
MoesimCudaDeviceInfo device_info();

class Timer {
 public:
  Timer();  // on the first device; throws when none is usable
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Empty when `op` can run on this device, else why not (no FP8 tensor
  // cores, no cuBLASLt kernel for the shape, a size out of range).
  std::string unsupported(const MoesimCudaOp& op);
  // REQUIRES: every op supported. Frees the previous batch, allocates the
  // operands of ops[0..count) (an error if they exceed the device's free
  // memory), fills them, and runs each op once, untimed (library heuristics,
  // lazy module loading).
  void prepare(const MoesimCudaOp* ops, int64_t count);
  // Seconds of device time for `calls` >= 1 back-to-back runs of prepared op `index`.
  double sample_seconds(int64_t index, int calls);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace moesim::kern::cuda_raw
