#pragma once
// The boundary between moesim and its CUDA module (libmoesim_cuda.so, built
// from moe_layer_cuda_raw.cu and cuda_timer_raw.cu when nvcc is found). The
// module is loaded with dlopen only by the commands that use a GPU, so that no
// other command pays for initialising the CUDA runtime and cuBLAS (hundreds of
// milliseconds and megabytes at every start). C linkage and plain types only:
// errors come back as text in the caller's buffer, never as exceptions across
// the boundary.
//
// Versions: the loader accepts only a module whose `version` equals
// kMoesimCudaApiVersion (`version` is the table's first member in every
// version, so reading it is always safe). Bump it whenever the table or a
// struct below changes.
//   1: device_available, route, forward (the reference MoE layer).
//   2: + device_info and the timer_* entry points (`moesim calibrate --device cuda`).

#include <cstddef>
#include <cstdint>

extern "C" {

inline constexpr int kMoesimCudaApiVersion = 2;

struct MoesimCudaLayerDims {
  int64_t tokens, hidden, ffn, experts, top_k, shared_ffn;
  int normalize_top_k;  // 0 or 1
};

// Element types of the timed operations (the GPU's own, not the reference
// layer's FP32). GEMMs accumulate in FP32 in every case.
enum MoesimCudaDtype : int32_t {
  kMoesimCudaFp32 = 0,  // IEEE FP32 (no TF32)
  kMoesimCudaTf32 = 1,  // FP32 storage, TF32 tensor cores
  kMoesimCudaBf16 = 2,
  kMoesimCudaFp16 = 3,
  kMoesimCudaFp8 = 4,  // E4M3 operands, BF16 output
};

enum MoesimCudaOpKind : int32_t {
  kMoesimCudaGemm = 0,         // one GEMM (cuBLASLt)
  kMoesimCudaGroupedGemm = 1,  // `groups` GEMMs in one launch (cublasGemmGroupedBatchedEx)
  kMoesimCudaCopy = 2,         // a device-to-device copy kernel
  kMoesimCudaEmptyKernel = 3,  // a kernel that does nothing: the launch cost
};

// One operation to time. GEMMs are laid out as a linear layer:
// out[m, n] = activations[m, k] * weight[n, k]^T, row-major, so m counts
// tokens and each weight is an [n, k] matrix (cuBLAS "TN").
struct MoesimCudaOp {
  int32_t kind;     // MoesimCudaOpKind
  int32_t dtype;    // MoesimCudaDtype (GEMMs only)
  int64_t m, n, k;  // GEMMs; grouped: m rows per group
  int64_t groups;   // grouped GEMM: groups, each with its own weight; else 1
  int64_t bytes;    // copy: bytes read + bytes written (a positive multiple of 32)
};

struct MoesimCudaDeviceInfo {
  char name[256];
  int32_t compute_capability_major, compute_capability_minor;
  int32_t multiprocessors;
  int64_t global_memory_bytes, l2_cache_bytes;
  int32_t runtime_version, driver_version;  // 1000 * major + 10 * minor
  int64_t cublaslt_version;                 // cublasLtGetVersion()
};

// A timing session on the first CUDA device (opaque): a stream, cuBLAS and
// cuBLASLt handles, CUDA events, and the operands of the prepared operations.
typedef struct MoesimCudaTimer MoesimCudaTimer;

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

  // --- version 2: kernel timing (semantics: cuda_timer_raw.h) ---
  // The first device's description. 0 on success, else 1 with `error`.
  int (*device_info)(MoesimCudaDeviceInfo* info, char* error, size_t error_size);
  // A new session, or NULL with `error`. Destroy it with timer_destroy.
  MoesimCudaTimer* (*timer_create)(char* error, size_t error_size);
  void (*timer_destroy)(MoesimCudaTimer* timer);
  // 1 when `op` can run on this device; else 0 with the reason in `why`.
  int (*timer_supports)(MoesimCudaTimer* timer, const MoesimCudaOp* op, char* why, size_t why_size);
  // Allocates operands for ops[0..count) (replacing any earlier batch) and
  // runs each once, untimed. 0 on success, else 1 with `error`.
  int (*timer_prepare)(MoesimCudaTimer* timer, const MoesimCudaOp* ops, int64_t count, char* error,
                       size_t error_size);
  // Device time of `calls` back-to-back runs of prepared op `index`: CUDA
  // events recorded around them on the session's stream. 0 on success, else 1.
  int (*timer_sample)(MoesimCudaTimer* timer, int64_t index, int32_t calls, double* seconds,
                      char* error, size_t error_size);
};

// The module's one exported symbol.
const MoesimCudaApi* moesim_cuda_api();
typedef const MoesimCudaApi* (*MoesimCudaApiFn)();
}
