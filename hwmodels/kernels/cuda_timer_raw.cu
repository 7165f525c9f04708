#include "hwmodels/kernels/cuda_timer_raw.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "hwmodels/kernels/cuda_check.cuh"

namespace moesim::kern::cuda_raw {
namespace {

// cuBLAS documentation, cublasSetWorkspace(): 32 MiB recommended on Hopper
// (4 MiB on earlier GPUs); the heuristic may pick split-K kernels that use it.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;
// Every operand starts on a 256-byte boundary (cudaMalloc's alignment; cuBLAS
// needs 16 bytes).
constexpr size_t kAlignBytes = 256;
// Distinct pointer tables a grouped GEMM cycles through (see Prepared).
constexpr int kMaxGroupedRotations = 8;
// cublasGemmGroupedBatchedEx appeared in cuBLAS 12.5; older toolkits still
// build the module, without grouped GEMMs.
#if CUBLAS_VERSION >= 120500
constexpr bool kHaveGroupedGemm = true;
#else
constexpr bool kHaveGroupedGemm = false;
#endif

size_t round_up(size_t x, size_t to) {
  return (x + to - 1) / to * to;
}

std::string format(const char* fmt, long long a, long long b = 0, long long c = 0,
                   long long d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), fmt, a, b, c, d);
  return buf;
}

// Storage bytes of one operand element and of one output element.
size_t operand_bytes(int32_t dtype) {
  switch (dtype) {
    case kMoesimCudaFp32:
    case kMoesimCudaTf32:
      return 4;
    case kMoesimCudaBf16:
    case kMoesimCudaFp16:
      return 2;
    case kMoesimCudaFp8:
      return 1;
  }
  throw std::runtime_error(format("unknown dtype code %lld", dtype));
}
size_t output_bytes(int32_t dtype) {
  return dtype == kMoesimCudaFp8 ? 2 : operand_bytes(dtype);  // FP8 writes BF16
}

cudaDataType_t operand_type(int32_t dtype) {
  switch (dtype) {
    case kMoesimCudaFp32:
    case kMoesimCudaTf32:
      return CUDA_R_32F;
    case kMoesimCudaBf16:
      return CUDA_R_16BF;
    case kMoesimCudaFp16:
      return CUDA_R_16F;
    case kMoesimCudaFp8:
      return CUDA_R_8F_E4M3;
  }
  throw std::runtime_error(format("unknown dtype code %lld", dtype));
}
cudaDataType_t output_type(int32_t dtype) {
  return dtype == kMoesimCudaFp8 ? CUDA_R_16BF : operand_type(dtype);
}
cublasComputeType_t compute_type(int32_t dtype) {
  return dtype == kMoesimCudaTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

// Random finite values of every dtype: see cuda_timer_raw.h. The hash is
// MurmurHash3's 32-bit finaliser.
__global__ void fill_random_bytes_kernel(unsigned char* bytes, size_t count, uint32_t seed) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += stride) {
    uint32_t h = static_cast<uint32_t>(i) ^ static_cast<uint32_t>(i >> 32) * 0x9E3779B9u ^ seed;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    bytes[i] = static_cast<unsigned char>(0x20u | (h & 0x1Fu) | ((h >> 8) & 0x80u));
  }
}

__global__ void copy_kernel(const uint4* __restrict__ from, uint4* __restrict__ to, size_t count) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += stride) {
    to[i] = from[i];
  }
}

__global__ void empty_kernel() {}

struct DeviceBytes {
  char* ptr = nullptr;
  size_t size = 0;
  DeviceBytes() = default;
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  ~DeviceBytes() { release(); }
  void allocate(size_t bytes) {
    release();
    if (bytes) check(cudaMalloc(reinterpret_cast<void**>(&ptr), bytes), "cudaMalloc");
    size = bytes;
  }
  void release() {
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    size = 0;
  }
};

// One cuBLASLt GEMM's descriptors and chosen algorithm.
struct LtGemm {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t weight = nullptr, activations = nullptr, out = nullptr;
  cublasLtMatmulAlgo_t algo{};
  LtGemm() = default;
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;
  ~LtGemm() {
    if (out) cublasLtMatrixLayoutDestroy(out);
    if (activations) cublasLtMatrixLayoutDestroy(activations);
    if (weight) cublasLtMatrixLayoutDestroy(weight);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

struct Preference {
  cublasLtMatmulPreference_t pref = nullptr;
  Preference() { check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate"); }
  Preference(const Preference&) = delete;
  Preference& operator=(const Preference&) = delete;
  ~Preference() { cublasLtMatmulPreferenceDestroy(pref); }
};

// Builds `g` for `op` and picks cuBLASLt's first heuristic algorithm. Returns
// why not when cuBLASLt has none for this dtype and shape.
std::string build_lt_gemm(cublasLtHandle_t lt, const MoesimCudaOp& op, LtGemm& g) {
  // Column-major view of the row-major layer out[m, n] = act[m, k] w[n, k]^T:
  // out^T (n x m, ld n) = op_T(w stored k x n, ld k) * (act^T stored k x m, ld k).
  // FP8 needs exactly this "TN" form (cublasLtMatmul() documentation).
  const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
  check(cublasLtMatmulDescCreate(&g.desc, compute_type(op.dtype), CUDA_R_32F),
        "cublasLtMatmulDescCreate");
  check(
      cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa)),
      "cublasLtMatmulDescSetAttribute(TRANSA)");
  check(
      cublasLtMatmulDescSetAttribute(g.desc, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb)),
      "cublasLtMatmulDescSetAttribute(TRANSB)");
  const cudaDataType_t in = operand_type(op.dtype), out = output_type(op.dtype);
  check(cublasLtMatrixLayoutCreate(&g.weight, in, op.k, op.n, op.k), "cublasLtMatrixLayoutCreate");
  check(cublasLtMatrixLayoutCreate(&g.activations, in, op.k, op.m, op.k),
        "cublasLtMatrixLayoutCreate");
  check(cublasLtMatrixLayoutCreate(&g.out, out, op.n, op.m, op.n), "cublasLtMatrixLayoutCreate");
  Preference preference;
  const uint64_t workspace = kWorkspaceBytes;
  check(
      cublasLtMatmulPreferenceSetAttribute(
          preference.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)),
      "cublasLtMatmulPreferenceSetAttribute");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(
      lt, g.desc, g.weight, g.activations, g.out, g.out, preference.pref, 1, &result, &found);
  if (s == CUBLAS_STATUS_NOT_SUPPORTED || (s == CUBLAS_STATUS_SUCCESS && found == 0)) {
    return format("cuBLASLt has no kernel for this dtype at m=%lld n=%lld k=%lld", op.m, op.n,
                  op.k);
  }
  check(s, "cublasLtMatmulAlgoGetHeuristic");
  g.algo = result.algo;
  return "";
}

}  // namespace

MoesimCudaDeviceInfo device_info() {
  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (count == 0) throw std::runtime_error("no CUDA device");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  MoesimCudaDeviceInfo info{};
  std::snprintf(info.name, sizeof(info.name), "%s", prop.name);
  info.compute_capability_major = prop.major;
  info.compute_capability_minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.global_memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  info.l2_cache_bytes = prop.l2CacheSize;
  check(cudaRuntimeGetVersion(&info.runtime_version), "cudaRuntimeGetVersion");
  check(cudaDriverGetVersion(&info.driver_version), "cudaDriverGetVersion");
  info.cublaslt_version = static_cast<int64_t>(cublasLtGetVersion());
  return info;
}

// One prepared operation.
struct Prepared {
  MoesimCudaOp op{};
  // Bytes of the operand that moves through the pool: the weight (GEMM), all
  // groups' weights (grouped GEMM) or the source (copy).
  size_t pooled_bytes = 0;
  size_t pool_offset = 0;  // where the next call takes it
  size_t calls = 0;
  std::unique_ptr<LtGemm> gemm;  // GEMM
  // Grouped GEMM: kMaxGroupedRotations at most tables of 3 * groups device
  // pointers (weights, activations, outputs), each table's weights at another
  // place in the pool; calls cycle through them.
  DeviceBytes pointer_tables;
  int rotations = 0;
};

struct Timer::State {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  int compute_capability = 0;  // 10 * major + minor
  int multiprocessors = 0;
  size_t l2_bytes = 0;
  DeviceBytes workspace, pool, activations, outputs;
  std::vector<std::unique_ptr<Prepared>> prepared;

  ~State() {
    prepared.clear();
    if (stop) cudaEventDestroy(stop);
    if (start) cudaEventDestroy(start);
    if (lt) cublasLtDestroy(lt);
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }

  // Advances `p` to its next place in the pool (each call's weight or source
  // elsewhere, so it is not in L2 from the previous call).
  size_t next_pool_offset(Prepared& p) {
    const size_t span = pool.size - p.pooled_bytes;
    const size_t step = round_up(p.pooled_bytes, kAlignBytes) + kAlignBytes;
    const size_t offset = p.pool_offset;
    p.pool_offset = span == 0 ? 0 : (p.pool_offset + step) % (span + 1) / kAlignBytes * kAlignBytes;
    return offset;
  }

  void launch(Prepared& p);
  void make_pointer_tables(Prepared& p);
};

void Timer::State::launch(Prepared& p) {
  const MoesimCudaOp& op = p.op;
  const float alpha = 1.0f, beta = 0.0f;
  switch (op.kind) {
    case kMoesimCudaGemm: {
      const char* weight = pool.ptr + next_pool_offset(p);
      check(cublasLtMatmul(lt, p.gemm->desc, &alpha, weight, p.gemm->weight, activations.ptr,
                           p.gemm->activations, &beta, outputs.ptr, p.gemm->out, outputs.ptr,
                           p.gemm->out, &p.gemm->algo, workspace.ptr, workspace.size, stream),
            "cublasLtMatmul");
      break;
    }
    case kMoesimCudaGroupedGemm: {
#if CUBLAS_VERSION >= 120500
      const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
      // Column-major, as build_lt_gemm: rows n, columns m, depth k.
      const int rows = static_cast<int>(op.n), cols = static_cast<int>(op.m),
                depth = static_cast<int>(op.k), group_size = static_cast<int>(op.groups);
      const int table = static_cast<int>(p.calls % static_cast<size_t>(p.rotations));
      void** pointers = reinterpret_cast<void**>(p.pointer_tables.ptr) + table * 3 * op.groups;
      check(cublasGemmGroupedBatchedEx(blas, &transa, &transb, &rows, &cols, &depth, &alpha,
                                       pointers, operand_type(op.dtype), &depth,
                                       pointers + op.groups, operand_type(op.dtype), &depth, &beta,
                                       pointers + 2 * op.groups, output_type(op.dtype), &rows, 1,
                                       &group_size, compute_type(op.dtype)),
            "cublasGemmGroupedBatchedEx");
#endif
      break;
    }
    case kMoesimCudaCopy: {
      const size_t count = static_cast<size_t>(op.bytes) / 32;  // 16 bytes read + 16 written
      const size_t blocks = std::max<size_t>(
          1, std::min<size_t>((count + 255) / 256, static_cast<size_t>(multiprocessors) * 16));
      const auto* from = reinterpret_cast<const uint4*>(pool.ptr + next_pool_offset(p));
      copy_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(
          from, reinterpret_cast<uint4*>(outputs.ptr), count);
      check(cudaGetLastError(), "copy kernel");
      break;
    }
    case kMoesimCudaEmptyKernel:
      empty_kernel<<<1, 1, 0, stream>>>();
      check(cudaGetLastError(), "empty kernel");
      break;
    default:
      throw std::runtime_error(format("unknown operation kind %lld", op.kind));
  }
  ++p.calls;
}

void Timer::State::make_pointer_tables(Prepared& p) {
  const MoesimCudaOp& op = p.op;
  const size_t in = operand_bytes(op.dtype), out = output_bytes(op.dtype);
  const size_t weight_bytes = static_cast<size_t>(op.n * op.k) * in;
  const size_t span = pool.size - p.pooled_bytes;
  const size_t step = round_up(p.pooled_bytes, kAlignBytes) + kAlignBytes;
  p.rotations = static_cast<int>(std::min<size_t>(kMaxGroupedRotations, span / step + 1));
  std::vector<void*> host(static_cast<size_t>(p.rotations) * 3 * op.groups);
  for (int r = 0; r < p.rotations; ++r) {
    void** table = host.data() + static_cast<size_t>(r) * 3 * op.groups;
    const size_t base = r * step;  // <= span by the choice of rotations
    for (int64_t g = 0; g < op.groups; ++g) {
      table[g] = pool.ptr + base + g * weight_bytes;
      table[op.groups + g] = activations.ptr + g * static_cast<size_t>(op.m * op.k) * in;
      table[2 * op.groups + g] = outputs.ptr + g * static_cast<size_t>(op.m * op.n) * out;
    }
  }
  p.pointer_tables.allocate(host.size() * sizeof(void*));
  // On the timer's stream, and waited for: `host` is gone on return.
  check(cudaMemcpyAsync(p.pointer_tables.ptr, host.data(), host.size() * sizeof(void*),
                        cudaMemcpyHostToDevice, stream),
        "upload pointer tables");
  check(cudaStreamSynchronize(stream), "upload pointer tables");
}

Timer::Timer() : state_(std::make_unique<State>()) {
  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (count == 0) throw std::runtime_error("no CUDA device");
  check(cudaSetDevice(0), "cudaSetDevice");
  int major = 0, minor = 0, l2 = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), "attribute");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0), "attribute");
  check(cudaDeviceGetAttribute(&state_->multiprocessors, cudaDevAttrMultiProcessorCount, 0),
        "attribute");
  check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0), "attribute");
  state_->compute_capability = 10 * major + minor;
  state_->l2_bytes = static_cast<size_t>(l2);
  check(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cublasCreate(&state_->blas), "cublasCreate");
  check(cublasSetStream(state_->blas, state_->stream), "cublasSetStream");
  check(cublasLtCreate(&state_->lt), "cublasLtCreate");
  check(cudaEventCreate(&state_->start), "cudaEventCreate");
  check(cudaEventCreate(&state_->stop), "cudaEventCreate");
  state_->workspace.allocate(kWorkspaceBytes);
}

Timer::~Timer() = default;

std::string Timer::unsupported(const MoesimCudaOp& op) {
  switch (op.kind) {
    case kMoesimCudaGemm:
    case kMoesimCudaGroupedGemm: {
      if (op.m < 1 || op.n < 1 || op.k < 1 || op.groups < 1 || op.m > INT_MAX || op.n > INT_MAX ||
          op.k > INT_MAX || op.groups > INT_MAX) {
        return format("GEMM sizes out of range: m=%lld n=%lld k=%lld groups=%lld", op.m, op.n, op.k,
                      op.groups);
      }
      operand_bytes(op.dtype);  // throws on an unknown dtype
      if (op.dtype == kMoesimCudaFp8 && state_->compute_capability < 89) {
        return format(
            "FP8 tensor cores need compute capability 8.9 or later; this GPU has %lld.%lld",
            state_->compute_capability / 10, state_->compute_capability % 10);
      }
      if (op.kind == kMoesimCudaGroupedGemm) {
        if (!kHaveGroupedGemm) return "cuBLAS before 12.5 has no cublasGemmGroupedBatchedEx";
        // cuBLAS 13.1 documentation, cublasGemmGroupedBatchedEx(): BF16, FP16,
        // FP32 (and TF32 compute), no FP8.
        if (op.dtype == kMoesimCudaFp8) return "cublasGemmGroupedBatchedEx has no FP8 type";
        return "";
      }
      LtGemm g;
      return build_lt_gemm(state_->lt, op, g);
    }
    case kMoesimCudaCopy:
      if (op.bytes < 32 || op.bytes % 32 != 0) {
        return format("copy bytes %lld: expected a positive multiple of 32", op.bytes);
      }
      return "";
    case kMoesimCudaEmptyKernel:
      return "";
  }
  return format("unknown operation kind %lld", op.kind);
}

void Timer::prepare(const MoesimCudaOp* ops, int64_t count) {
  State& s = *state_;
  check(cudaStreamSynchronize(s.stream), "synchronize");
  s.prepared.clear();
  s.pool.release();
  s.activations.release();
  s.outputs.release();
  size_t pooled = 0, activations = 0, outputs = 0;
  for (int64_t i = 0; i < count; ++i) {
    const std::string why = unsupported(ops[i]);
    if (!why.empty()) throw std::runtime_error(format("operation %lld: ", i) + why);
    auto p = std::make_unique<Prepared>();
    p->op = ops[i];
    const MoesimCudaOp& op = p->op;
    if (op.kind == kMoesimCudaGemm || op.kind == kMoesimCudaGroupedGemm) {
      const size_t in = operand_bytes(op.dtype), out = output_bytes(op.dtype);
      const size_t groups = static_cast<size_t>(op.groups);
      p->pooled_bytes = groups * static_cast<size_t>(op.n) * static_cast<size_t>(op.k) * in;
      activations = std::max(activations, groups * static_cast<size_t>(op.m * op.k) * in);
      outputs = std::max(outputs, groups * static_cast<size_t>(op.m * op.n) * out);
    } else if (op.kind == kMoesimCudaCopy) {
      p->pooled_bytes = static_cast<size_t>(op.bytes) / 2;
      outputs = std::max(outputs, p->pooled_bytes);
    }
    pooled = std::max(pooled, p->pooled_bytes);
    s.prepared.push_back(std::move(p));
  }
  // The pool: room for the largest pooled operand at two places at least,
  // and four L2 caches, so a small weight taken at the next place is not in L2.
  const size_t pool = round_up(std::max(2 * pooled, 4 * s.l2_bytes), kAlignBytes);
  size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  const double need = static_cast<double>(pool + activations + outputs);
  if (need > 0.9 * static_cast<double>(free_bytes)) {
    char msg[160];
    std::snprintf(msg, sizeof(msg),
                  "the operands need %.2f GiB, more than 90%% of the %.2f GiB the GPU has free",
                  need / (1 << 30), static_cast<double>(free_bytes) / (1 << 30));
    throw std::runtime_error(msg);
  }
  s.pool.allocate(pool);
  s.activations.allocate(round_up(activations, kAlignBytes));
  s.outputs.allocate(round_up(outputs, kAlignBytes));
  uint32_t seed = 1;
  for (DeviceBytes* b : {&s.pool, &s.activations}) {
    if (!b->size) continue;
    fill_random_bytes_kernel<<<1024, 256, 0, s.stream>>>(reinterpret_cast<unsigned char*>(b->ptr),
                                                         b->size, seed++);
    check(cudaGetLastError(), "fill kernel");
  }
  for (auto& p : s.prepared) {
    if (p->op.kind == kMoesimCudaGemm) {
      p->gemm = std::make_unique<LtGemm>();
      const std::string why = build_lt_gemm(s.lt, p->op, *p->gemm);
      if (!why.empty()) throw std::runtime_error(why);
    } else if (p->op.kind == kMoesimCudaGroupedGemm) {
      s.make_pointer_tables(*p);
    }
    s.launch(*p);  // untimed first run
  }
  check(cudaStreamSynchronize(s.stream), "first runs");
}

double Timer::sample_seconds(int64_t index, int calls) {
  State& s = *state_;
  if (index < 0 || index >= static_cast<int64_t>(s.prepared.size())) {
    throw std::runtime_error(
        format("operation %lld is not prepared (%lld are)", index, s.prepared.size()));
  }
  if (calls < 1) throw std::runtime_error(format("calls %lld: expected >= 1", calls));
  Prepared& p = *s.prepared[index];
  check(cudaEventRecord(s.start, s.stream), "cudaEventRecord");
  for (int c = 0; c < calls; ++c) s.launch(p);
  check(cudaEventRecord(s.stop, s.stream), "cudaEventRecord");
  check(cudaEventSynchronize(s.stop), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, s.start, s.stop), "cudaEventElapsedTime");
  return ms * 1e-3;
}

}  // namespace moesim::kern::cuda_raw
