#pragma once
// Timing GPU kernels for `moesim calibrate --device cuda`: the operations the
// calibration measures and the timer interface it measures them with. The
// CUDA implementation (open_cuda_timer) goes through the CUDA module
// (cuda_module_api.h, cuda_timer_raw.h say exactly what runs); tests use a
// fake one, so the tables can be checked without a GPU.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "hwmodels/dtype.h"

namespace moesim::kern {

enum class GpuOpKind {
  kGemm,         // one GEMM
  kGroupedGemm,  // `groups` GEMMs of one shape, each with its own weight, in one launch
  kCopy,         // a memory-bound copy kernel
  kEmptyKernel,  // a launch that does nothing
};

// One operation. GEMMs are a linear layer: out[m, n] = act[m, k] * weight[n, k]^T
// (m counts tokens; a grouped GEMM has m rows per group).
struct GpuOp {
  GpuOpKind kind = GpuOpKind::kGemm;
  hw::DType dtype = hw::DType::kBf16;  // GEMMs only
  int64_t m = 0, n = 0, k = 0;
  int64_t groups = 1;
  int64_t bytes = 0;  // copy: bytes read + bytes written, a positive multiple of 32

  double flops() const { return 2.0 * static_cast<double>(groups) * m * n * k; }
};

// The device, for reports.
struct GpuDescription {
  std::string name;
  int compute_capability_major = 0, compute_capability_minor = 0;
  int multiprocessors = 0;
  int64_t memory_bytes = 0, l2_cache_bytes = 0;
  std::string runtime_version, driver_version, blas_version;
};

// A session on one GPU. Calls are made from one thread.
class GpuTimer {
 public:
  virtual ~GpuTimer() = default;
  virtual GpuDescription describe() = 0;
  // Empty when `op` can run on this GPU; otherwise why not, in words (FP8
  // without FP8 tensor cores, no library kernel for the shape).
  virtual std::string unsupported(const GpuOp& op) = 0;
  // REQUIRES: every op supported. Replaces the prepared batch with `ops`:
  // allocates and fills their operands and runs each once, untimed.
  virtual void prepare(std::span<const GpuOp> ops) = 0;
  // Device seconds of `calls` >= 1 back-to-back runs of prepared op `index`.
  virtual double sample_seconds(size_t index, int calls) = 0;
};

// A timer on the first CUDA device, through the CUDA module. Throws
// moesim::Error starting "cuda: " when the module is absent or of another
// API version, or no device is usable; the timer's own failures too.
std::unique_ptr<GpuTimer> open_cuda_timer();

}  // namespace moesim::kern
