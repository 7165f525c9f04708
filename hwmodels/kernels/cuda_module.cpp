// The CUDA module's side of cuda_module_api.h: wraps the raw CUDA layer
// (moe_layer_cuda_raw.cu) and kernel timer (cuda_timer_raw.cu) behind C
// functions that turn exceptions into text.

#include <cstdio>
#include <exception>
#include <string>

#include "hwmodels/kernels/cuda_module_api.h"
#include "hwmodels/kernels/cuda_timer_raw.h"
#include "hwmodels/kernels/moe_layer_cuda_raw.h"

// The opaque session of the C API.
struct MoesimCudaTimer {
  moesim::kern::cuda_raw::Timer timer;
};

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

// Runs `body`; returns 0, or 1 with the exception's message in `error`.
template <typename Body>
int guarded(char* error, size_t error_size, Body body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    copy_message(e.what(), error, error_size);
  } catch (...) {
    copy_message("unknown exception in the CUDA module", error, error_size);
  }
  return 1;
}

int device_info(MoesimCudaDeviceInfo* info, char* error, size_t error_size) {
  return guarded(error, error_size, [&] { *info = moesim::kern::cuda_raw::device_info(); });
}

MoesimCudaTimer* timer_create(char* error, size_t error_size) {
  MoesimCudaTimer* timer = nullptr;
  guarded(error, error_size, [&] { timer = new MoesimCudaTimer{}; });
  return timer;
}

void timer_destroy(MoesimCudaTimer* timer) {
  delete timer;
}

int timer_supports(MoesimCudaTimer* timer, const MoesimCudaOp* op, char* why, size_t why_size) {
  std::string reason;
  if (guarded(why, why_size, [&] { reason = timer->timer.unsupported(*op); })) return 0;
  if (reason.empty()) return 1;
  copy_message(reason.c_str(), why, why_size);
  return 0;
}

int timer_prepare(MoesimCudaTimer* timer, const MoesimCudaOp* ops, int64_t count, char* error,
                  size_t error_size) {
  return guarded(error, error_size, [&] { timer->timer.prepare(ops, count); });
}

int timer_sample(MoesimCudaTimer* timer, int64_t index, int32_t calls, double* seconds, char* error,
                 size_t error_size) {
  return guarded(error, error_size, [&] { *seconds = timer->timer.sample_seconds(index, calls); });
}

const MoesimCudaApi kApi = {kMoesimCudaApiVersion, device_available, route,         forward,
                            device_info,           timer_create,     timer_destroy, timer_supports,
                            timer_prepare,         timer_sample};

}  // namespace

extern "C" __attribute__((visibility("default"))) const MoesimCudaApi* moesim_cuda_api() {
  return &kApi;
}
