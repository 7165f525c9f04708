#include "hwmodels/kernels/moe_layer_cuda_raw.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "hwmodels/kernels/cuda_check.cuh"

namespace moesim::kern::cuda_raw {
namespace {

template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t n) {
    if (n) check(cudaMalloc(&ptr, n * sizeof(T)), "cudaMalloc");
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(ptr); }
  void upload(const T* host, size_t n) {
    if (n) check(cudaMemcpy(ptr, host, n * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
};

// Row-major C[m,n] = A[m,k] B[k,n] is column-major C^T = B^T A^T.
void gemm(cublasHandle_t h, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
          float* c, float beta) {
  if (m == 0 || n == 0) return;
  const float alpha = 1.0f;
  check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                    static_cast<int>(k), &alpha, b, static_cast<int>(n), a, static_cast<int>(k),
                    &beta, c, static_cast<int>(n)),
        "sgemm");
}

// One thread per token: top-k by insertion, then gate weights.
__global__ void softmax_topk_kernel(const float* logits, int64_t tokens, int64_t experts, int64_t k,
                                    bool normalize, int32_t* idx, float* weight) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= tokens) return;
  const float* row = logits + t * experts;
  int32_t* id = idx + t * k;
  float* val = weight + t * k;
  int64_t have = 0;
  for (int64_t e = 0; e < experts; ++e) {
    const float v = row[e];
    if (have == k && v <= val[k - 1]) continue;
    int64_t pos = have < k ? have++ : k - 1;
    while (pos > 0 && val[pos - 1] < v) {
      val[pos] = val[pos - 1];
      id[pos] = id[pos - 1];
      --pos;
    }
    val[pos] = v;
    id[pos] = static_cast<int32_t>(e);
  }
  const float top = row[id[0]];
  float denom = 0;
  if (normalize) {
    for (int64_t j = 0; j < k; ++j) denom += expf(row[id[j]] - top);
  } else {
    for (int64_t e = 0; e < experts; ++e) denom += expf(row[e] - top);
  }
  for (int64_t j = 0; j < k; ++j) val[j] = expf(row[id[j]] - top) / denom;
}

__global__ void gather_rows_kernel(const float* x, const int32_t* perm_token, int64_t rows,
                                   int64_t hidden, float* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows * hidden) return;
  const int64_t r = i / hidden, c = i % hidden;
  out[i] = x[perm_token[r] * hidden + c];
}

__global__ void swiglu_kernel(const float* h, int64_t rows, int64_t ffn, float* a) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows * ffn) return;
  const int64_t r = i / ffn, j = i % ffn;
  const float g = h[r * 2 * ffn + j], u = h[r * 2 * ffn + ffn + j];
  a[i] = g / (1.0f + expf(-g)) * u;
}

// One thread per output element; assignments of a token are summed in a
// fixed order, so results are deterministic.
__global__ void combine_kernel(const float* y, const int64_t* row_of, const float* weight,
                               int64_t tokens, int64_t k, int64_t hidden, bool accumulate,
                               float* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= tokens * hidden) return;
  const int64_t t = i / hidden, c = i % hidden;
  float acc = accumulate ? out[i] : 0.0f;
  for (int64_t j = 0; j < k; ++j) {
    const int64_t row = row_of[t * k + j];
    if (row >= 0) acc += weight[t * k + j] * y[row * hidden + c];
  }
  out[i] = acc;
}

unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>((n + 255) / 256);
}

}  // namespace

bool device_available(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (why) *why = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device";
    return false;
  }
  return true;
}

namespace {

struct Handle {
  cublasHandle_t h = nullptr;
  Handle() { check(cublasCreate(&h), "cublasCreate"); }
  Handle(const Handle&) = delete;
  ~Handle() { cublasDestroy(h); }
};

std::unique_ptr<DeviceBuffer<float>> to_device(const float* host, size_t n) {
  auto b = std::make_unique<DeviceBuffer<float>>(n);
  b->upload(host, n);
  return b;
}

void launch_router(cublasHandle_t h, const LayerDims& d, const float* x, const float* router,
                   float* logits, int32_t* idx, float* weight) {
  gemm(h, d.tokens, d.experts, d.hidden, x, router, logits, 0.0f);
  softmax_topk_kernel<<<blocks_for(d.tokens), 256>>>(logits, d.tokens, d.experts, d.top_k,
                                                     d.normalize_top_k, idx, weight);
  check(cudaGetLastError(), "softmax_topk");
}

}  // namespace

void route(const LayerDims& d, const float* x, const float* router, int32_t* expert,
           float* weight) {
  Handle handle;
  const int64_t T = d.tokens, H = d.hidden, E = d.experts, k = d.top_k;
  auto d_x = to_device(x, T * H);
  auto d_router = to_device(router, H * E);
  DeviceBuffer<float> d_logits(T * E), d_weight(T * k);
  DeviceBuffer<int32_t> d_idx(T * k);
  launch_router(handle.h, d, d_x->ptr, d_router->ptr, d_logits.ptr, d_idx.ptr, d_weight.ptr);
  check(cudaMemcpy(expert, d_idx.ptr, T * k * sizeof(int32_t), cudaMemcpyDeviceToHost),
        "download routing");
  check(cudaMemcpy(weight, d_weight.ptr, T * k * sizeof(float), cudaMemcpyDeviceToHost),
        "download routing");
}

double forward(const LayerDims& d, const float* x, const float* router,
               const float* const* w_gate_up, const float* const* w_down,
               const float* shared_gate_up, const float* shared_down, const int64_t* offsets,
               const int32_t* perm_token, const int64_t* row_of, const float* weight, int reps,
               float* out) {
  Handle handle;
  const int64_t T = d.tokens, H = d.hidden, E = d.experts, k = d.top_k, F = d.ffn,
                Fs = d.shared_ffn;
  const int64_t kept = offsets[E];
  auto d_x = to_device(x, T * H);
  auto d_router = to_device(router, H * E);
  std::vector<std::unique_ptr<DeviceBuffer<float>>> gate_up, down;
  for (int64_t e = 0; e < E; ++e) {
    gate_up.push_back(to_device(w_gate_up[e], H * 2 * F));
    down.push_back(to_device(w_down[e], F * H));
  }
  DeviceBuffer<float> d_sgu(H * 2 * Fs), d_sdown(Fs * H), d_sh(T * 2 * Fs), d_sa(T * Fs);
  d_sgu.upload(shared_gate_up, H * 2 * Fs);
  d_sdown.upload(shared_down, Fs * H);
  DeviceBuffer<float> d_logits(T * E), d_rw(T * k), d_out(T * H);
  DeviceBuffer<int32_t> d_idx(T * k), d_perm(kept);
  DeviceBuffer<int64_t> d_row_of(T * k);
  DeviceBuffer<float> d_weight(T * k), d_gx(kept * H), d_gh(kept * 2 * F), d_ga(kept * F),
      d_gy(kept * H);
  d_perm.upload(perm_token, kept);
  d_row_of.upload(row_of, T * k);
  d_weight.upload(weight, T * k);

  auto run_once = [&] {
    // The router runs so the timed work is the whole layer; dispatch follows
    // the given permutation.
    launch_router(handle.h, d, d_x->ptr, d_router->ptr, d_logits.ptr, d_idx.ptr, d_rw.ptr);
    if (kept) {
      gather_rows_kernel<<<blocks_for(kept * H), 256>>>(d_x->ptr, d_perm.ptr, kept, H, d_gx.ptr);
    }
    for (int64_t e = 0; e < E; ++e) {
      gemm(handle.h, offsets[e + 1] - offsets[e], 2 * F, H, d_gx.ptr + offsets[e] * H,
           gate_up[e]->ptr, d_gh.ptr + offsets[e] * 2 * F, 0.0f);
    }
    if (kept) swiglu_kernel<<<blocks_for(kept * F), 256>>>(d_gh.ptr, kept, F, d_ga.ptr);
    for (int64_t e = 0; e < E; ++e) {
      gemm(handle.h, offsets[e + 1] - offsets[e], H, F, d_ga.ptr + offsets[e] * F, down[e]->ptr,
           d_gy.ptr + offsets[e] * H, 0.0f);
    }
    if (Fs) {
      gemm(handle.h, T, 2 * Fs, H, d_x->ptr, d_sgu.ptr, d_sh.ptr, 0.0f);
      swiglu_kernel<<<blocks_for(T * Fs), 256>>>(d_sh.ptr, T, Fs, d_sa.ptr);
      gemm(handle.h, T, H, Fs, d_sa.ptr, d_sdown.ptr, d_out.ptr, 0.0f);
    }
    combine_kernel<<<blocks_for(T * H), 256>>>(d_gy.ptr, d_row_of.ptr, d_weight.ptr, T, k, H,
                                               Fs > 0, d_out.ptr);
    check(cudaGetLastError(), "kernel launch");
  };

  run_once();  // warm-up: module load, cuBLAS heuristics
  check(cudaDeviceSynchronize(), "warm-up");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  std::vector<float> ms;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    check(cudaEventRecord(start), "event");
    run_once();
    check(cudaEventRecord(stop), "event");
    check(cudaEventSynchronize(stop), "event");
    float t = 0;
    check(cudaEventElapsedTime(&t, start, stop), "event");
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  check(cudaMemcpy(out, d_out.ptr, T * H * sizeof(float), cudaMemcpyDeviceToHost), "download out");
  return ms[ms.size() / 2] * 1e-3;
}

}  // namespace moesim::kern::cuda_raw
