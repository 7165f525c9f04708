// The CUDA layer against the naive CPU reference (needs a GPU; skipped with
// exit code 77 otherwise).

#include <cmath>
#include <cstdio>
#include <tuple>

#include "hwmodels/kernels/moe_layer.h"
#include "hwmodels/kernels/moe_layer_cuda.h"

int main() {
  using namespace moesim::kern;
  std::string why;
  if (!cuda::module_available(&why)) {
    std::printf("SKIPPED: %s\n", why.c_str());
    return 77;
  }
  if (!cuda::device_available(&why)) {
    std::printf("SKIPPED: no CUDA device on this machine (%s)\n", why.c_str());
    return 77;
  }
  int failures = 0;
  for (auto [experts, top_k, zipf, cf] :
       {std::tuple{8, 1, 0.0, 0.0}, std::tuple{64, 8, 1.2, 1.0}, std::tuple{256, 8, 1.5, 0.0}}) {
    MoeShape s;
    s.tokens = 96;
    s.hidden = 64;
    s.ffn = 32;
    s.experts = experts;
    s.top_k = top_k;
    s.capacity_factor = cf;
    s.shared_experts = 1;
    const MoeWeights w = random_weights(s, 3);
    const auto x = random_matrix(s.tokens, s.hidden, 1.0f, 4);
    const Routing r = synthetic_routing(s, zipf, 5);
    std::vector<float> ref(x.size());
    reference_forward(s, w, x, ref, &r);
    const auto got = cuda::forward(s, w, x, &r, 1).out;
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      num += (got[i] - ref[i]) * (got[i] - ref[i]);
      den += ref[i] * ref[i];
    }
    const double rel = std::sqrt(num / den);
    std::printf("experts=%d top_k=%d rel_error=%.3g\n", experts, top_k, rel);
    if (!(rel <= 1e-4)) ++failures;  // TF32 is off: cuBLAS SGEMM is full FP32 by default
  }
  return failures ? 1 : 0;
}
