// GpuTimer over the CUDA module's timer entry points (cuda_module_api.h,
// version 2).

#include <fmt/format.h>

#include <vector>

#include "hwmodels/kernels/cuda_module_loader.h"
#include "hwmodels/kernels/gpu_timer.h"
#include "sim/core/error.h"

namespace moesim::kern {
namespace {

int32_t dtype_code(hw::DType dtype) {
  switch (dtype) {
    case hw::DType::kFp32:
      return kMoesimCudaFp32;
    case hw::DType::kTf32:
      return kMoesimCudaTf32;
    case hw::DType::kBf16:
      return kMoesimCudaBf16;
    case hw::DType::kFp16:
      return kMoesimCudaFp16;
    case hw::DType::kFp8:
      return kMoesimCudaFp8;
  }
  return kMoesimCudaFp32;
}

int32_t kind_code(GpuOpKind kind) {
  switch (kind) {
    case GpuOpKind::kGemm:
      return kMoesimCudaGemm;
    case GpuOpKind::kGroupedGemm:
      return kMoesimCudaGroupedGemm;
    case GpuOpKind::kCopy:
      return kMoesimCudaCopy;
    case GpuOpKind::kEmptyKernel:
      return kMoesimCudaEmptyKernel;
  }
  return kMoesimCudaEmptyKernel;
}

MoesimCudaOp to_c(const GpuOp& op) {
  return MoesimCudaOp{
      kind_code(op.kind), dtype_code(op.dtype), op.m, op.n, op.k, op.groups, op.bytes};
}

// A failure the module reported, as "cuda: ..." (without doubling the prefix
// of the module's own CUDA errors).
Error module_error(const char* text) {
  const std::string t = text;
  return Error(t.rfind("cuda: ", 0) == 0 ? t : "cuda: " + t);
}

// "13.0" from CUDA's 1000 * major + 10 * minor.
std::string cuda_version(int v) {
  return fmt::format("{}.{}", v / 1000, v % 1000 / 10);
}

class CudaTimer : public GpuTimer {
 public:
  explicit CudaTimer(const MoesimCudaApi& api) : api_(api) {
    char error[512] = "";
    timer_ = api_.timer_create(error, sizeof(error));
    if (!timer_) throw module_error(error);
  }
  CudaTimer(const CudaTimer&) = delete;
  CudaTimer& operator=(const CudaTimer&) = delete;
  ~CudaTimer() override { api_.timer_destroy(timer_); }

  GpuDescription describe() override {
    MoesimCudaDeviceInfo info{};
    char error[512] = "";
    if (api_.device_info(&info, error, sizeof(error))) throw module_error(error);
    GpuDescription d;
    d.name = info.name;
    d.compute_capability_major = info.compute_capability_major;
    d.compute_capability_minor = info.compute_capability_minor;
    d.multiprocessors = info.multiprocessors;
    d.memory_bytes = info.global_memory_bytes;
    d.l2_cache_bytes = info.l2_cache_bytes;
    d.runtime_version = "CUDA runtime " + cuda_version(info.runtime_version);
    d.driver_version = "CUDA driver " + cuda_version(info.driver_version);
    d.blas_version = fmt::format("cuBLASLt {}", info.cublaslt_version);
    return d;
  }

  std::string unsupported(const GpuOp& op) override {
    const MoesimCudaOp c = to_c(op);
    char why[512] = "";
    return api_.timer_supports(timer_, &c, why, sizeof(why)) ? std::string() : std::string(why);
  }

  void prepare(std::span<const GpuOp> ops) override {
    std::vector<MoesimCudaOp> c;
    for (const GpuOp& op : ops) c.push_back(to_c(op));
    char error[512] = "";
    if (api_.timer_prepare(timer_, c.data(), static_cast<int64_t>(c.size()), error,
                           sizeof(error))) {
      throw module_error(error);
    }
  }

  double sample_seconds(size_t index, int calls) override {
    double seconds = 0;
    char error[512] = "";
    if (api_.timer_sample(timer_, static_cast<int64_t>(index), calls, &seconds, error,
                          sizeof(error))) {
      throw module_error(error);
    }
    return seconds;
  }

 private:
  const MoesimCudaApi& api_;
  MoesimCudaTimer* timer_ = nullptr;
};

}  // namespace

std::unique_ptr<GpuTimer> open_cuda_timer() {
  std::string why;
  const MoesimCudaApi* api = cuda::loaded_module(&why);
  if (!api) throw Error("cuda: " + why);
  char reason[512] = "";
  if (!api->device_available(reason, sizeof(reason))) {
    throw Error(std::string("cuda: no usable GPU: ") + reason);
  }
  return std::make_unique<CudaTimer>(*api);
}

}  // namespace moesim::kern
