#include "hwmodels/kernels/moe_layer_cuda.h"

#include <stdexcept>

#include "hwmodels/kernels/moe_layer_cuda_raw.h"
#include "sim/core/error.h"

namespace moesim::kern::cuda {

bool device_available(std::string* why) {
  return cuda_raw::device_available(why);
}

CudaForwardResult forward(const MoeShape& s, const MoeWeights& w, std::span<const float> x,
                          const Routing* routing, int reps) {
  validate_shape(s);
  std::string why;
  if (!device_available(&why)) throw Error("cuda: no usable GPU: " + why);
  const cuda_raw::LayerDims d{
      s.tokens, s.hidden, s.ffn, s.experts, s.top_k, s.shared_experts * s.ffn, s.normalize_top_k};
  try {
    Routing chosen;
    if (!routing) {
      chosen.tokens = s.tokens;
      chosen.top_k = s.top_k;
      chosen.expert.resize(s.tokens * s.top_k);
      chosen.weight.resize(s.tokens * s.top_k);
      cuda_raw::route(d, x.data(), w.router.data(), chosen.expert.data(), chosen.weight.data());
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
    r.median_seconds = cuda_raw::forward(d, x.data(), w.router.data(), gu.data(), dn.data(),
                                         w.shared_gate_up.data(), w.shared_down.data(),
                                         offsets.data(), perm_token.data(), row_of.data(),
                                         routing->weight.data(), reps, r.out.data());
    return r;
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const Error*>(&e)) throw;
    throw Error(e.what());
  }
}

}  // namespace moesim::kern::cuda
