#pragma once
// The reference MoE layer on the CPU: real FP32 arithmetic, timed by
// `moesim calibrate` and `moesim validate kernel`.
//
// Forward: router GEMM -> softmax -> top-k -> permutation (tokens grouped by
// expert) -> capacity-factor dropping -> per-expert SwiGLU FFN (fused gate|up
// GEMM, activation, down GEMM) -> un-permute with gate-weighted combine, plus
// shared experts applied to every token. GEMMs go through OpenBLAS (sgemm,
// row-major) running single-threaded inside blocks that a small std::thread
// pool (work_pool.h) hands out; the memory-bound steps use the same pool.
//
// Layout (all row-major FP32):
//   x                [tokens, hidden]
//   router           [hidden, experts]
//   w_gate_up[e]     [hidden, 2*ffn]   columns [0,ffn) gate, [ffn,2ffn) up
//   w_down[e]        [ffn, hidden]
//   shared experts: one SwiGLU FFN of width shared_experts*ffn.

#include <cstdint>
#include <span>
#include <vector>

namespace moesim::kern {

struct MoeShape {
  int64_t tokens = 0;
  int64_t hidden = 0;
  int64_t ffn = 0;  // per routed expert
  int64_t experts = 0;
  int64_t top_k = 1;
  int64_t shared_experts = 0;
  // Capacity per expert = ceil(capacity_factor * tokens * top_k / experts);
  // assignments beyond it are dropped in token order. <= 0: no dropping.
  double capacity_factor = 0.0;
  // Mixtral-style: softmax over the chosen k (true) vs top-k of the full softmax.
  bool normalize_top_k = true;
};

// Throws moesim::Error naming the field when a shape is impossible.
void validate_shape(const MoeShape& shape);

// Which experts each token uses and with what gate weight.
// expert[t*top_k + j], weight[t*top_k + j]; expert ids in [0, experts).
struct Routing {
  int64_t tokens = 0;
  int64_t top_k = 0;
  std::vector<int32_t> expert;
  std::vector<float> weight;
};

// Seeded synthetic routing: `zipf_s` = 0 gives uniform expert popularity,
// larger values skew it (popularity of the r-th expert ~ 1/r^s, expert order
// shuffled). The k experts of a token are distinct; weights are a softmax of
// random logits over the chosen k. Deterministic in (seed, shape, zipf_s).
Routing synthetic_routing(const MoeShape& shape, double zipf_s, uint64_t seed);

// Tokens each expert receives after capacity dropping.
std::vector<int64_t> tokens_per_expert(const MoeShape& shape, const Routing& routing);

struct MoeWeights {
  std::vector<float> router;                  // [hidden, experts]
  std::vector<std::vector<float>> w_gate_up;  // experts x [hidden, 2*ffn]
  std::vector<std::vector<float>> w_down;     // experts x [ffn, hidden]
  std::vector<float> shared_gate_up;          // [hidden, 2*shared_ffn] (empty if none)
  std::vector<float> shared_down;             // [shared_ffn, hidden]
};

// Random weights, scaled so activations stay O(1). Deterministic in seed.
MoeWeights random_weights(const MoeShape& shape, uint64_t seed);
std::vector<float> random_matrix(int64_t rows, int64_t cols, float scale, uint64_t seed);

// Time spent in each step of one forward call (seconds, wall clock).
struct MoeStepTimes {
  double router_s = 0, softmax_topk_s = 0, permute_s = 0, gate_up_s = 0, activation_s = 0,
         down_s = 0, combine_s = 0, shared_s = 0;
  double total_s() const {
    return router_s + softmax_topk_s + permute_s + gate_up_s + activation_s + down_s + combine_s +
           shared_s;
  }
};

// One MoE layer with its scratch buffers; reuse it across calls so timing does
// not include allocation.
class MoeLayer {
 public:
  MoeLayer(const MoeShape& shape, const MoeWeights& weights);

  // out[tokens, hidden] = MoE(x). With `routing` given, the router still runs
  // (so the timed work is the whole layer) but dispatch follows `routing`
  // instead of the router's choice: predicted and measured time then see the
  // same expert loads. Fills `times` when non-null.
  void forward(std::span<const float> x, std::span<float> out, const Routing* routing = nullptr,
               MoeStepTimes* times = nullptr);

  // The routing the router chose in the last forward() without an override.
  const Routing& last_router_choice() const { return router_choice_; }

  const MoeShape& shape() const { return shape_; }

 private:
  void route(std::span<const float> x, MoeStepTimes* times);
  MoeShape shape_;
  const MoeWeights& w_;
  std::vector<float> logits_;        // [tokens, experts]
  Routing router_choice_;            // from the router
  std::vector<int64_t> offsets_;     // experts+1 prefix sums of kept tokens
  std::vector<int32_t> perm_token_;  // kept assignment -> token
  std::vector<int64_t> row_of_;      // assignment -> grouped row, -1 if dropped
  std::vector<int64_t> fill_;        // per-expert fill cursor
  std::vector<float> perm_weight_;   // kept assignment -> gate weight
  std::vector<float> grouped_x_;     // [kept, hidden]
  std::vector<float> grouped_h_;     // [kept, 2*ffn]
  std::vector<float> grouped_a_;     // [kept, ffn]
  std::vector<float> grouped_y_;     // [kept, hidden]
  std::vector<float> shared_h_, shared_a_;
};

// The naive triple-loop reference of the same layer (no BLAS, no threads,
// double accumulation) used by the tests.
void reference_forward(const MoeShape& shape, const MoeWeights& weights, std::span<const float> x,
                       std::span<float> out, const Routing* routing = nullptr);

// --- Expert FFN backward (training) -----------------------------------------
// For one expert with input a[m, hidden] and the SwiGLU FFN above, given the
// output gradient dy[m, hidden], computes dx[m, hidden], dw_gate_up
// [hidden, 2*ffn] and dw_down [ffn, hidden]: per weight the two GEMMs
// (activation gradient and weight gradient).
struct FfnGrads {
  std::vector<float> dx, dw_gate_up, dw_down;
};
FfnGrads expert_ffn_backward(int64_t m, int64_t hidden, int64_t ffn, std::span<const float> x,
                             std::span<const float> w_gate_up, std::span<const float> w_down,
                             std::span<const float> dy);
// The SwiGLU FFN forward for one expert: y[m, hidden].
std::vector<float> expert_ffn_forward(int64_t m, int64_t hidden, int64_t ffn,
                                      std::span<const float> x, std::span<const float> w_gate_up,
                                      std::span<const float> w_down);
// Naive reference of the backward (double accumulation).
FfnGrads reference_ffn_backward(int64_t m, int64_t hidden, int64_t ffn, std::span<const float> x,
                                std::span<const float> w_gate_up, std::span<const float> w_down,
                                std::span<const float> dy);

// --- Building blocks shared with calibration ---------------------------------
// C[m,n] (+)= A[m,k] * B[k,n], row-major, contiguous (OpenBLAS sgemm).
void sgemm(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c,
           bool accumulate = false);
// h[m, 2f] -> a[m, f] = silu(gate) * up.
void swiglu(int64_t m, int64_t ffn, const float* h, float* a);
// Threads the kernel uses (the caller included).
int kernel_threads();
void set_kernel_threads(int threads);

}  // namespace moesim::kern
