#include "hwmodels/kernels/moe_layer_cuda.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "hwmodels/kernels/cuda_module_api.h"
#include "hwmodels/kernels/cuda_module_loader.h"
#include "sim/core/error.h"

namespace moesim::kern::cuda {
namespace {

// Where the module is looked for: $MOESIM_CUDA_MODULE, else beside the
// running executable (the build puts libmoesim_cuda.so next to moesim).
std::string module_path() {
  if (const char* env = std::getenv("MOESIM_CUDA_MODULE"); env && *env) return env;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("libmoesim_cuda.so") : (exe.parent_path() / "libmoesim_cuda.so").string();
}

struct Module {
  const MoesimCudaApi* api = nullptr;
  std::string error;  // why the module could not be loaded
};

// Loaded once, on first use, and kept for the process's lifetime.
const Module& module() {
  static Module m;
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string path = module_path();
    if (!std::filesystem::exists(path)) {
      m.error = "the CUDA module " + path +
                " is not there (moesim was built without nvcc, or MOESIM_CUDA=OFF)";
      return;
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      m.error = std::string("cannot load the CUDA module: ") + dlerror();
      return;
    }
    const auto entry = reinterpret_cast<MoesimCudaApiFn>(dlsym(handle, "moesim_cuda_api"));
    const MoesimCudaApi* api = entry ? entry() : nullptr;
    if (!api) {
      m.error = path + " is not a moesim CUDA module (no moesim_cuda_api table)";
      return;
    }
    // `version` is the first member in every version of the table.
    if (api->version != kMoesimCudaApiVersion) {
      m.error = path + " speaks CUDA module API version " + std::to_string(api->version) +
                "; this moesim needs version " + std::to_string(kMoesimCudaApiVersion) +
                " (rebuild the module with this moesim)";
      return;
    }
    m.api = api;
  });
  return m;
}

const MoesimCudaApi& api_or_throw() {
  const Module& m = module();
  if (!m.api) throw Error("cuda: " + m.error);
  return *m.api;
}

}  // namespace

const MoesimCudaApi* loaded_module(std::string* why) {
  const Module& m = module();
  if (!m.api && why) *why = m.error;
  return m.api;
}

bool module_available(std::string* why) {
  return loaded_module(why) != nullptr;
}

bool device_available(std::string* why) {
  const Module& m = module();
  if (!m.api) {
    if (why) *why = m.error;
    return false;
  }
  char reason[512] = "";
  if (m.api->device_available(reason, sizeof(reason))) return true;
  if (why) *why = reason;
  return false;
}

CudaForwardResult forward(const MoeShape& s, const MoeWeights& w, std::span<const float> x,
                          const Routing* routing, int reps) {
  validate_shape(s);
  const MoesimCudaApi& api = api_or_throw();
  std::string why;
  if (!device_available(&why)) throw Error("cuda: no usable GPU: " + why);
  const MoesimCudaLayerDims d{s.tokens,
                              s.hidden,
                              s.ffn,
                              s.experts,
                              s.top_k,
                              s.shared_experts * s.ffn,
                              s.normalize_top_k ? 1 : 0};
  char error[512] = "";
  {
    Routing chosen;
    if (!routing) {
      chosen.tokens = s.tokens;
      chosen.top_k = s.top_k;
      chosen.expert.resize(s.tokens * s.top_k);
      chosen.weight.resize(s.tokens * s.top_k);
      if (api.route(&d, x.data(), w.router.data(), chosen.expert.data(), chosen.weight.data(),
                    error, sizeof(error))) {
        throw Error(error);
      }
      routing = &chosen;
    }
    // Permutation on the host, as the CPU layer builds it: stable by token,
    // capacity dropping in token order.
    const std::vector<int64_t> load = tokens_per_expert(s, *routing);
    std::vector<int64_t> offsets(s.experts + 1, 0);
    for (int64_t e = 0; e < s.experts; ++e) offsets[e + 1] = offsets[e] + load[e];
    std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1), row_of(s.tokens * s.top_k, -1);
    std::vector<int32_t> perm_token(offsets.back());
    for (int64_t i = 0; i < s.tokens * s.top_k; ++i) {
      const int32_t e = routing->expert[i];
      if (fill[e] < offsets[e + 1]) {
        row_of[i] = fill[e]++;
        perm_token[row_of[i]] = static_cast<int32_t>(i / s.top_k);
      }
    }
    std::vector<const float*> gu, dn;
    for (int64_t e = 0; e < s.experts; ++e) {
      gu.push_back(w.w_gate_up[e].data());
      dn.push_back(w.w_down[e].data());
    }
    CudaForwardResult r;
    r.out.resize(s.tokens * s.hidden);
    if (api.forward(&d, x.data(), w.router.data(), gu.data(), dn.data(), w.shared_gate_up.data(),
                    w.shared_down.data(), offsets.data(), perm_token.data(), row_of.data(),
                    routing->weight.data(), reps, r.out.data(), &r.median_seconds, error,
                    sizeof(error))) {
      throw Error(error);
    }
    return r;
  }
}

}  // namespace moesim::kern::cuda
