#include "hwmodels/kernels/moe_layer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include <cblas.h>
#include <fmt/format.h>

#include "hwmodels/kernels/work_pool.h"
#include "sim/core/error.h"
#include "sim/core/rng.h"

namespace moesim::kern {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point& t0) {
  const auto now = Clock::now();
  const double s = std::chrono::duration<double>(now - t0).count();
  t0 = now;
  return s;
}

// Rows [0, n) in blocks of 16 on the pool when `parallel`, else inline.
template <typename Fn>
void parallel_rows(int64_t n, bool parallel, const Fn& fn) {
  constexpr int64_t kBlock = 16;
  if (!parallel) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  parallel_tasks((n + kBlock - 1) / kBlock, [&](int64_t b) {
    for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) fn(i);
  });
}

float silu(float g) {
  return g / (1.0f + std::exp(-g));
}

void gemm_t(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
            int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, float beta) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

// Top-k of one row by repeated insertion: k <= 8 and experts <= a few hundred,
// where this beats a heap or nth_element.
void top_k_row(const float* row, int64_t experts, int64_t k, int32_t* idx, float* val) {
  int64_t have = 0;
  for (int64_t e = 0; e < experts; ++e) {
    const float v = row[e];
    if (have == k && v <= val[k - 1]) continue;
    int64_t pos = have < k ? have++ : k - 1;
    while (pos > 0 && val[pos - 1] < v) {
      val[pos] = val[pos - 1];
      idx[pos] = idx[pos - 1];
      --pos;
    }
    val[pos] = v;
    idx[pos] = static_cast<int32_t>(e);
  }
}

// Gate weights of a token from its router logits: softmax over the chosen k
// (normalize_top_k) or the chosen entries of the full softmax.
template <typename T>
void gate_weights(const T* logits, int64_t experts, int64_t k, const int32_t* idx, bool normalize,
                  float* weight) {
  const T top = logits[idx[0]];
  T denom = 0;
  if (normalize) {
    for (int64_t j = 0; j < k; ++j) denom += std::exp(logits[idx[j]] - top);
  } else {
    for (int64_t e = 0; e < experts; ++e) denom += std::exp(logits[e] - top);
  }
  for (int64_t j = 0; j < k; ++j)
    weight[j] = static_cast<float>(std::exp(logits[idx[j]] - top) / denom);
}

}  // namespace

void validate_shape(const MoeShape& s) {
  auto need = [](bool ok, const char* field, int64_t v, const char* what) {
    if (!ok) throw Error(fmt::format("moe shape: {} = {}: {}", field, v, what));
  };
  need(s.tokens >= 0, "tokens", s.tokens, "must be >= 0");
  need(s.hidden > 0, "hidden", s.hidden, "must be positive");
  need(s.ffn > 0, "ffn", s.ffn, "must be positive");
  need(s.experts > 0 && s.experts <= 65536, "experts", s.experts, "must be in [1, 65536]");
  need(s.top_k >= 1 && s.top_k <= s.experts, "top_k", s.top_k, "must be in [1, experts]");
  need(s.shared_experts >= 0, "shared_experts", s.shared_experts, "must be >= 0");
  if (!std::isfinite(s.capacity_factor)) throw Error("moe shape: capacity_factor must be finite");
}

Routing synthetic_routing(const MoeShape& shape, double zipf_s, uint64_t seed) {
  validate_shape(shape);
  if (!(zipf_s >= 0) || !std::isfinite(zipf_s)) {
    throw Error(fmt::format("routing: zipf exponent {} must be >= 0", zipf_s));
  }
  Rng rng(seed, /*stream=*/0x6b65726eULL);
  const int64_t E = shape.experts, k = shape.top_k;
  // Popularity by rank, assigned to experts in a shuffled order so the hot
  // expert is not always expert 0.
  std::vector<int32_t> order(E);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = E - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  std::vector<double> cdf(E);
  double acc = 0;
  for (int64_t r = 0; r < E; ++r) {
    acc += 1.0 / std::pow(static_cast<double>(r + 1), zipf_s);
    cdf[r] = acc;
  }
  Routing out;
  out.tokens = shape.tokens;
  out.top_k = k;
  out.expert.resize(shape.tokens * k);
  out.weight.resize(shape.tokens * k);
  std::vector<double> logit(k);
  for (int64_t t = 0; t < shape.tokens; ++t) {
    int32_t* chosen = &out.expert[t * k];
    for (int64_t j = 0; j < k; ++j) {
      // Rejection of repeats keeps the k experts distinct; k <= experts.
      for (;;) {
        const double u = rng.uniform() * acc;
        const int64_t r =
            std::min<int64_t>(E - 1, std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
        const int32_t e = order[r];
        if (std::find(chosen, chosen + j, e) == chosen + j) {
          chosen[j] = e;
          break;
        }
      }
      logit[j] = rng.normal();
    }
    const double top = *std::max_element(logit.begin(), logit.end());
    double denom = 0;
    for (double l : logit) denom += std::exp(l - top);
    for (int64_t j = 0; j < k; ++j) {
      out.weight[t * k + j] = static_cast<float>(std::exp(logit[j] - top) / denom);
    }
  }
  return out;
}

namespace {
int64_t capacity_of(const MoeShape& s) {
  if (s.capacity_factor <= 0) return INT64_MAX;
  return static_cast<int64_t>(
      std::ceil(s.capacity_factor * static_cast<double>(s.tokens * s.top_k) / s.experts));
}

void check_routing(const MoeShape& s, const Routing& r) {
  if (r.tokens != s.tokens || r.top_k != s.top_k ||
      r.expert.size() != static_cast<size_t>(s.tokens * s.top_k) ||
      r.weight.size() != r.expert.size()) {
    throw Error(fmt::format("routing: {} tokens x top-{} does not match the layer ({} x top-{})",
                            r.tokens, r.top_k, s.tokens, s.top_k));
  }
  for (size_t i = 0; i < r.expert.size(); ++i) {
    if (r.expert[i] < 0 || r.expert[i] >= s.experts) {
      throw Error(
          fmt::format("routing: expert[{}] = {} outside [0, {})", i, r.expert[i], s.experts));
    }
  }
}
}  // namespace

std::vector<int64_t> tokens_per_expert(const MoeShape& shape, const Routing& routing) {
  check_routing(shape, routing);
  const int64_t cap = capacity_of(shape);
  std::vector<int64_t> count(shape.experts, 0);
  for (int32_t e : routing.expert) {
    if (count[e] < cap) ++count[e];
  }
  return count;
}

std::vector<float> random_matrix(int64_t rows, int64_t cols, float scale, uint64_t seed) {
  Rng rng(seed, 1);
  std::vector<float> m(rows * cols);
  for (float& v : m) v = static_cast<float>((rng.uniform() * 2.0 - 1.0) * scale);
  return m;
}

MoeWeights random_weights(const MoeShape& s, uint64_t seed) {
  validate_shape(s);
  MoeWeights w;
  // Uniform(-a, a) has variance a^2/3: a = sqrt(3/fan_in) keeps unit variance.
  const float in_h = std::sqrt(3.0f / s.hidden), in_f = std::sqrt(3.0f / s.ffn);
  w.router = random_matrix(s.hidden, s.experts, in_h, seed * 1000 + 1);
  for (int64_t e = 0; e < s.experts; ++e) {
    w.w_gate_up.push_back(random_matrix(s.hidden, 2 * s.ffn, in_h, seed * 1000 + 10 + 2 * e));
    w.w_down.push_back(random_matrix(s.ffn, s.hidden, in_f, seed * 1000 + 11 + 2 * e));
  }
  if (s.shared_experts > 0) {
    const int64_t fs = s.shared_experts * s.ffn;
    w.shared_gate_up = random_matrix(s.hidden, 2 * fs, in_h, seed * 1000 + 2);
    w.shared_down = random_matrix(fs, s.hidden, std::sqrt(3.0f / fs), seed * 1000 + 3);
  }
  return w;
}

namespace {
// One thread pool: OpenBLAS's own pthreads pool and OpenMP's both spin after
// work, and on a small machine each steals the other's cores (measured: ~8 ms
// stalls per step switch on 2 cores). So OpenBLAS runs single-threaded and
// every GEMM is split across OpenMP threads here.
void blas_single_threaded() {
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}
}  // namespace

void sgemm(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c,
           bool accumulate) {
  if (m == 0 || n == 0) return;
  blas_single_threaded();
  const float beta = accumulate ? 1.0f : 0.0f;
  const int threads = pool_threads();
  // Split the output in column blocks (each thread streams its own part of
  // the weight) when n is wide, else in row blocks; tiny GEMMs stay on one
  // thread where a fork would cost more than it saves.
  const double flops = 2.0 * static_cast<double>(m) * n * k;
  if (threads == 1 || flops < 2e5) {
    gemm_t(false, false, m, n, k, a, k, b, n, c, n, beta);
    return;
  }
  // More blocks than threads, handed out dynamically (work_pool.h): a thread
  // that loses its core for a time slice does not hold up the call.
  const bool by_cols = n >= 64 * threads || n >= m;
  const int64_t extent = by_cols ? n : m;
  const int64_t min_block = by_cols ? 128 : 16;
  const int64_t parts = std::clamp<int64_t>(extent / min_block, 1, 4 * threads);
  const int64_t align = by_cols ? 16 : 1;  // keep column blocks SIMD-aligned
  parallel_tasks(parts, [&](int64_t p) {
    int64_t lo = extent * p / parts, hi = extent * (p + 1) / parts;
    lo = lo / align * align;
    hi = p + 1 == parts ? extent : hi / align * align;
    if (hi <= lo) return;
    if (by_cols) {
      gemm_t(false, false, m, hi - lo, k, a, k, b + lo, n, c + lo, n, beta);
    } else {
      gemm_t(false, false, hi - lo, n, k, a + lo * k, k, b, n, c + lo * n, n, beta);
    }
  });
}

void swiglu(int64_t m, int64_t ffn, const float* h, float* a) {
  parallel_rows(m, m * ffn > 32768, [&](int64_t r) {
    const float* g = h + r * 2 * ffn;
    const float* u = g + ffn;
    float* out = a + r * ffn;
    for (int64_t j = 0; j < ffn; ++j) out[j] = silu(g[j]) * u[j];
  });
}

int kernel_threads() {
  return pool_threads();
}

void set_kernel_threads(int threads) {
  set_pool_threads(threads);
  blas_single_threaded();
}

MoeLayer::MoeLayer(const MoeShape& shape, const MoeWeights& weights) : shape_(shape), w_(weights) {
  validate_shape(shape_);
  const int64_t T = shape_.tokens, H = shape_.hidden, E = shape_.experts, k = shape_.top_k;
  if (w_.router.size() != static_cast<size_t>(H * E) ||
      w_.w_gate_up.size() != static_cast<size_t>(E) || w_.w_down.size() != static_cast<size_t>(E)) {
    throw Error("moe layer: weights do not match the shape");
  }
  logits_.resize(T * E);
  router_choice_.tokens = T;
  router_choice_.top_k = k;
  router_choice_.expert.resize(T * k);
  router_choice_.weight.resize(T * k);
  offsets_.resize(E + 1);
  perm_token_.resize(T * k);
  row_of_.resize(T * k);
  fill_.resize(E);
  perm_weight_.resize(T * k);
  grouped_x_.resize(T * k * H);
  grouped_h_.resize(T * k * 2 * shape_.ffn);
  grouped_a_.resize(T * k * shape_.ffn);
  grouped_y_.resize(T * k * H);
  if (shape_.shared_experts > 0) {
    const int64_t fs = shape_.shared_experts * shape_.ffn;
    shared_h_.resize(T * 2 * fs);
    shared_a_.resize(T * fs);
  }
}

void MoeLayer::route(std::span<const float> x, MoeStepTimes* times) {
  const int64_t T = shape_.tokens, H = shape_.hidden, E = shape_.experts, k = shape_.top_k;
  auto t0 = Clock::now();
  sgemm(T, E, H, x.data(), w_.router.data(), logits_.data());
  const double router_s = since(t0);
  parallel_rows(T, T * E > 16384, [&](int64_t t) {
    const float* row = &logits_[t * E];
    int32_t* idx = &router_choice_.expert[t * k];
    float* val = &router_choice_.weight[t * k];
    top_k_row(row, E, k, idx, val);
    gate_weights(row, E, k, idx, shape_.normalize_top_k, val);
  });
  if (times) {
    times->router_s = router_s;
    times->softmax_topk_s = since(t0);
  }
}

void MoeLayer::forward(std::span<const float> x, std::span<float> out, const Routing* routing,
                       MoeStepTimes* times) {
  const int64_t T = shape_.tokens, H = shape_.hidden, E = shape_.experts, k = shape_.top_k,
                F = shape_.ffn;
  if (x.size() != static_cast<size_t>(T * H) || out.size() != static_cast<size_t>(T * H)) {
    throw Error(fmt::format("moe layer: x and out must hold {} x {} floats", T, H));
  }
  if (routing) check_routing(shape_, *routing);
  route(x, times);
  const Routing& r = routing ? *routing : router_choice_;

  // Permutation: a stable counting sort by expert keeps token order inside an
  // expert, so capacity drops the latest tokens (Switch Transformer).
  auto t0 = Clock::now();
  const int64_t cap = capacity_of(shape_);
  std::fill(offsets_.begin(), offsets_.end(), 0);
  for (int64_t i = 0; i < T * k; ++i) ++offsets_[r.expert[i] + 1];
  for (int64_t e = 0; e < E; ++e) offsets_[e + 1] = offsets_[e] + std::min(offsets_[e + 1], cap);
  const int64_t kept = offsets_[E];
  std::copy(offsets_.begin(), offsets_.end() - 1, fill_.begin());
  // row_of_ lets combine run per token, in parallel and in a fixed order.
  std::vector<int64_t>& fill = fill_;
  std::vector<int64_t>& row_of = row_of_;
  for (int64_t i = 0; i < T * k; ++i) {
    const int32_t e = r.expert[i];
    if (fill[e] < offsets_[e + 1]) {
      const int64_t row = fill[e]++;
      perm_token_[row] = static_cast<int32_t>(i / k);
      perm_weight_[row] = r.weight[i];
      row_of[i] = row;
    } else {
      row_of[i] = -1;
    }
  }
  parallel_rows(kept, kept * H > 32768, [&](int64_t row) {
    std::copy_n(&x[perm_token_[row] * H], H, &grouped_x_[row * H]);
  });
  const double permute_s = since(t0);

  for (int64_t e = 0; e < E; ++e) {
    const int64_t m = offsets_[e + 1] - offsets_[e];
    sgemm(m, 2 * F, H, &grouped_x_[offsets_[e] * H], w_.w_gate_up[e].data(),
          &grouped_h_[offsets_[e] * 2 * F]);
  }
  const double gate_up_s = since(t0);
  swiglu(kept, F, grouped_h_.data(), grouped_a_.data());
  const double activation_s = since(t0);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t m = offsets_[e + 1] - offsets_[e];
    sgemm(m, H, F, &grouped_a_[offsets_[e] * F], w_.w_down[e].data(), &grouped_y_[offsets_[e] * H]);
  }
  const double down_s = since(t0);

  const bool shared = shape_.shared_experts > 0;
  if (shared) {
    const int64_t fs = shape_.shared_experts * F;
    sgemm(T, 2 * fs, H, x.data(), w_.shared_gate_up.data(), shared_h_.data());
    swiglu(T, fs, shared_h_.data(), shared_a_.data());
    sgemm(T, H, fs, shared_a_.data(), w_.shared_down.data(), out.data());
  }
  const double shared_s = since(t0);

  parallel_rows(T, T * H > 32768, [&](int64_t t) {
    float* o = &out[t * H];
    if (!shared) std::fill_n(o, H, 0.0f);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t row = row_of[t * k + j];
      if (row < 0) continue;
      const float w = perm_weight_[row];
      const float* y = &grouped_y_[row * H];
      for (int64_t c = 0; c < H; ++c) o[c] += w * y[c];
    }
  });
  const double combine_s = since(t0);
  if (times) {
    times->permute_s = permute_s;
    times->gate_up_s = gate_up_s;
    times->activation_s = activation_s;
    times->down_s = down_s;
    times->shared_s = shared_s;
    times->combine_s = combine_s;
  }
}

namespace {
// Naive SwiGLU FFN for one token row, double accumulation.
void naive_ffn_row(int64_t hidden, int64_t ffn, const float* x, const float* w_gate_up,
                   const float* w_down, double scale, std::vector<double>& acc) {
  std::vector<double> a(ffn);
  for (int64_t j = 0; j < ffn; ++j) {
    double g = 0, u = 0;
    for (int64_t c = 0; c < hidden; ++c) {
      g += static_cast<double>(x[c]) * w_gate_up[c * 2 * ffn + j];
      u += static_cast<double>(x[c]) * w_gate_up[c * 2 * ffn + ffn + j];
    }
    a[j] = g / (1.0 + std::exp(-g)) * u;
  }
  for (int64_t c = 0; c < hidden; ++c) {
    double y = 0;
    for (int64_t j = 0; j < ffn; ++j) y += a[j] * w_down[j * hidden + c];
    acc[c] += scale * y;
  }
}
}  // namespace

void reference_forward(const MoeShape& s, const MoeWeights& w, std::span<const float> x,
                       std::span<float> out, const Routing* routing) {
  validate_shape(s);
  const int64_t T = s.tokens, H = s.hidden, E = s.experts, k = s.top_k;
  Routing own;
  if (!routing) {
    own.tokens = T;
    own.top_k = k;
    own.expert.resize(T * k);
    own.weight.resize(T * k);
    std::vector<double> logits(E);
    std::vector<float> logits_f(E), vals(k);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t e = 0; e < E; ++e) {
        double l = 0;
        for (int64_t c = 0; c < H; ++c)
          l += static_cast<double>(x[t * H + c]) * w.router[c * E + e];
        logits[e] = l;
        logits_f[e] = static_cast<float>(l);
      }
      top_k_row(logits_f.data(), E, k, &own.expert[t * k], vals.data());
      gate_weights(logits.data(), E, k, &own.expert[t * k], s.normalize_top_k, &own.weight[t * k]);
    }
    routing = &own;
  } else {
    check_routing(s, *routing);
  }
  const int64_t cap = capacity_of(s);
  std::vector<int64_t> load(E, 0);
  std::vector<std::vector<double>> acc(T, std::vector<double>(H, 0.0));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = routing->expert[t * k + j];
      if (load[e]++ >= cap) continue;  // dropped: the token keeps only the residual path
      naive_ffn_row(H, s.ffn, &x[t * H], w.w_gate_up[e].data(), w.w_down[e].data(),
                    routing->weight[t * k + j], acc[t]);
    }
    if (s.shared_experts > 0) {
      naive_ffn_row(H, s.shared_experts * s.ffn, &x[t * H], w.shared_gate_up.data(),
                    w.shared_down.data(), 1.0, acc[t]);
    }
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t c = 0; c < H; ++c) out[t * H + c] = static_cast<float>(acc[t][c]);
  }
}

std::vector<float> expert_ffn_forward(int64_t m, int64_t hidden, int64_t ffn,
                                      std::span<const float> x, std::span<const float> w_gate_up,
                                      std::span<const float> w_down) {
  std::vector<float> h(m * 2 * ffn), a(m * ffn), y(m * hidden);
  sgemm(m, 2 * ffn, hidden, x.data(), w_gate_up.data(), h.data());
  swiglu(m, ffn, h.data(), a.data());
  sgemm(m, hidden, ffn, a.data(), w_down.data(), y.data());
  return y;
}

FfnGrads expert_ffn_backward(int64_t m, int64_t hidden, int64_t ffn, std::span<const float> x,
                             std::span<const float> w_gate_up, std::span<const float> w_down,
                             std::span<const float> dy) {
  // Recompute h and a (activation checkpointing is the common training setup).
  std::vector<float> h(m * 2 * ffn), a(m * ffn), da(m * ffn), dh(m * 2 * ffn);
  sgemm(m, 2 * ffn, hidden, x.data(), w_gate_up.data(), h.data());
  swiglu(m, ffn, h.data(), a.data());
  FfnGrads g;
  g.dx.resize(m * hidden);
  g.dw_gate_up.resize(hidden * 2 * ffn);
  g.dw_down.resize(ffn * hidden);
  // Down projection y = a Wd: dWd = a^T dy, da = dy Wd^T.
  gemm_t(true, false, ffn, hidden, m, a.data(), ffn, dy.data(), hidden, g.dw_down.data(), hidden,
         0.0f);
  gemm_t(false, true, m, ffn, hidden, dy.data(), hidden, w_down.data(), hidden, da.data(), ffn,
         0.0f);
  // SwiGLU a = silu(g) * u: d silu(g)/dg = s (1 + g (1 - s)), s = sigmoid(g).
  parallel_rows(m, m * ffn > 32768, [&](int64_t r) {
    for (int64_t j = 0; j < ffn; ++j) {
      const float gv = h[r * 2 * ffn + j], uv = h[r * 2 * ffn + ffn + j];
      const float sg = 1.0f / (1.0f + std::exp(-gv));
      const float d = da[r * ffn + j];
      dh[r * 2 * ffn + j] = d * uv * sg * (1.0f + gv * (1.0f - sg));
      dh[r * 2 * ffn + ffn + j] = d * gv * sg;
    }
  });
  // Gate|up projection h = x Wgu: dWgu = x^T dh, dx = dh Wgu^T.
  gemm_t(true, false, hidden, 2 * ffn, m, x.data(), hidden, dh.data(), 2 * ffn, g.dw_gate_up.data(),
         2 * ffn, 0.0f);
  gemm_t(false, true, m, hidden, 2 * ffn, dh.data(), 2 * ffn, w_gate_up.data(), 2 * ffn,
         g.dx.data(), hidden, 0.0f);
  return g;
}

FfnGrads reference_ffn_backward(int64_t m, int64_t hidden, int64_t ffn, std::span<const float> x,
                                std::span<const float> wgu, std::span<const float> wd,
                                std::span<const float> dy) {
  FfnGrads g;
  g.dx.assign(m * hidden, 0);
  g.dw_gate_up.assign(hidden * 2 * ffn, 0);
  g.dw_down.assign(ffn * hidden, 0);
  std::vector<double> dwgu(hidden * 2 * ffn, 0), dwd(ffn * hidden, 0);
  for (int64_t r = 0; r < m; ++r) {
    std::vector<double> gv(ffn), uv(ffn), a(ffn), da(ffn, 0), dg(ffn), du(ffn);
    for (int64_t j = 0; j < ffn; ++j) {
      double gs = 0, us = 0;
      for (int64_t c = 0; c < hidden; ++c) {
        gs += static_cast<double>(x[r * hidden + c]) * wgu[c * 2 * ffn + j];
        us += static_cast<double>(x[r * hidden + c]) * wgu[c * 2 * ffn + ffn + j];
      }
      gv[j] = gs;
      uv[j] = us;
      a[j] = gs / (1 + std::exp(-gs)) * us;
    }
    for (int64_t j = 0; j < ffn; ++j) {
      for (int64_t c = 0; c < hidden; ++c) {
        dwd[j * hidden + c] += a[j] * dy[r * hidden + c];
        da[j] += static_cast<double>(dy[r * hidden + c]) * wd[j * hidden + c];
      }
      const double s = 1 / (1 + std::exp(-gv[j]));
      dg[j] = da[j] * uv[j] * s * (1 + gv[j] * (1 - s));
      du[j] = da[j] * gv[j] * s;
    }
    for (int64_t c = 0; c < hidden; ++c) {
      double dx = 0;
      for (int64_t j = 0; j < ffn; ++j) {
        dwgu[c * 2 * ffn + j] += x[r * hidden + c] * dg[j];
        dwgu[c * 2 * ffn + ffn + j] += x[r * hidden + c] * du[j];
        dx += dg[j] * wgu[c * 2 * ffn + j] + du[j] * wgu[c * 2 * ffn + ffn + j];
      }
      g.dx[r * hidden + c] = static_cast<float>(dx);
    }
  }
  for (size_t i = 0; i < dwgu.size(); ++i) g.dw_gate_up[i] = static_cast<float>(dwgu[i]);
  for (size_t i = 0; i < dwd.size(); ++i) g.dw_down[i] = static_cast<float>(dwd[i]);
  return g;
}

}  // namespace moesim::kern
