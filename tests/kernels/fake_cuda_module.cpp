// A stand-in for libmoesim_cuda.so that needs no GPU: the same exported table
// (cuda_module_api.h), with closed-form kernel times, so the loader, its
// version check and `moesim calibrate --device cuda` can be tested anywhere.
// Environment (read when the loader fetches the table):
//   MOESIM_FAKE_CUDA_API_VERSION=N  report API version N (default: this build's)
//   MOESIM_FAKE_CUDA_NO_DEVICE=1    device_available says there is no device
// Times per call (calls in a sample add up exactly; no noise):
//   GEMM          2*m*n*k / rate + 2 us, rate: BF16 400, TF32 200, FP32 50 TFLOP/s
//   grouped GEMM  groups * 2*m*n*k / (2 * rate) + 2 us (twice a GEMM's efficiency)
//   copy          bytes / 2 TB/s + 2 us;  empty kernel 3 us
// FP8 is unsupported ("compute capability 8.0"), as on an A100.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "hwmodels/kernels/cuda_module_api.h"

namespace {

constexpr double kLaunchS = 2e-6;

void say(const char* text, char* out, size_t size) {
  if (size > 0) std::snprintf(out, size, "%s", text);
}

double rate_flops_per_s(int32_t dtype) {
  switch (dtype) {
    case kMoesimCudaBf16:
    case kMoesimCudaFp16:
      return 400e12;
    case kMoesimCudaTf32:
      return 200e12;
    case kMoesimCudaFp32:
      return 50e12;
  }
  return 0;
}

double op_seconds(const MoesimCudaOp& op) {
  const double flops = 2.0 * static_cast<double>(op.m) * op.n * op.k;
  switch (op.kind) {
    case kMoesimCudaGemm:
      return flops / rate_flops_per_s(op.dtype) + kLaunchS;
    case kMoesimCudaGroupedGemm:
      return op.groups * flops / (2 * rate_flops_per_s(op.dtype)) + kLaunchS;
    case kMoesimCudaCopy:
      return static_cast<double>(op.bytes) / 2e12 + kLaunchS;
    default:
      return 3e-6;
  }
}

int device_available(char* why, size_t why_size) {
  const char* none = std::getenv("MOESIM_FAKE_CUDA_NO_DEVICE");
  if (none && std::strcmp(none, "1") == 0) {
    say("no CUDA device (fake module)", why, why_size);
    return 0;
  }
  return 1;
}

int route(const MoesimCudaLayerDims*, const float*, const float*, int32_t*, float*, char* error,
          size_t error_size) {
  say("the fake module has no MoE layer", error, error_size);
  return 1;
}

int forward(const MoesimCudaLayerDims*, const float*, const float*, const float* const*,
            const float* const*, const float*, const float*, const int64_t*, const int32_t*,
            const int64_t*, const float*, int, float*, double*, char* error, size_t error_size) {
  say("the fake module has no MoE layer", error, error_size);
  return 1;
}

int device_info(MoesimCudaDeviceInfo* info, char*, size_t) {
  *info = MoesimCudaDeviceInfo{};
  std::snprintf(info->name, sizeof(info->name), "Fake GPU (moesim test module)");
  info->compute_capability_major = 8;
  info->compute_capability_minor = 0;
  info->multiprocessors = 108;
  info->global_memory_bytes = int64_t{80} << 30;
  info->l2_cache_bytes = int64_t{40} << 20;
  info->runtime_version = 13000;
  info->driver_version = 13000;
  info->cublaslt_version = 130100;
  return 0;
}

}  // namespace

struct MoesimCudaTimer {
  std::vector<MoesimCudaOp> prepared;
};

namespace {

MoesimCudaTimer* timer_create(char*, size_t) {
  return new MoesimCudaTimer{};
}

void timer_destroy(MoesimCudaTimer* timer) {
  delete timer;
}

int timer_supports(MoesimCudaTimer*, const MoesimCudaOp* op, char* why, size_t why_size) {
  if ((op->kind == kMoesimCudaGemm || op->kind == kMoesimCudaGroupedGemm) &&
      op->dtype == kMoesimCudaFp8) {
    say("FP8 tensor cores need compute capability 8.9 or later; this GPU has 8.0", why, why_size);
    return 0;
  }
  return 1;
}

int timer_prepare(MoesimCudaTimer* timer, const MoesimCudaOp* ops, int64_t count, char* error,
                  size_t error_size) {
  for (int64_t i = 0; i < count; ++i) {
    if (!timer_supports(timer, &ops[i], error, error_size)) return 1;
  }
  timer->prepared.assign(ops, ops + count);
  return 0;
}

int timer_sample(MoesimCudaTimer* timer, int64_t index, int32_t calls, double* seconds, char* error,
                 size_t error_size) {
  if (index < 0 || index >= static_cast<int64_t>(timer->prepared.size()) || calls < 1) {
    say("timer_sample: no such prepared operation", error, error_size);
    return 1;
  }
  *seconds = calls * op_seconds(timer->prepared[index]);
  return 0;
}

MoesimCudaApi api_table() {
  MoesimCudaApi api = {kMoesimCudaApiVersion, device_available, route,         forward,
                       device_info,           timer_create,     timer_destroy, timer_supports,
                       timer_prepare,         timer_sample};
  if (const char* v = std::getenv("MOESIM_FAKE_CUDA_API_VERSION")) api.version = std::atoi(v);
  return api;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const MoesimCudaApi* moesim_cuda_api() {
  static const MoesimCudaApi api = api_table();
  return &api;
}
