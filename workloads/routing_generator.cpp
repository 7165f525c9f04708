#include "workloads/routing_generator.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>

#include "sim/core/config.h"
#include "sim/core/rng.h"
#include "workloads/trace_file.h"

namespace moesim::workloads {

AliasTable::AliasTable(std::span<const double> w)
    : n_(w.size()), prob_(w.size()), alias_(w.size()) {
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<double> scaled(w.size());
  std::vector<int32_t> small, large;
  for (size_t i = 0; i < w.size(); ++i) {
    scaled[i] = w[i] * n_ / sum;
    (scaled[i] < 1 ? small : large).push_back(static_cast<int32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const int32_t s = small.back(), l = large.back();
    small.pop_back();
    prob_[s] = scaled[s];
    alias_[s] = l;
    scaled[l] -= 1 - scaled[s];
    if (scaled[l] < 1) {
      large.pop_back();
      small.push_back(l);
    }
  }
  for (int32_t i : large) prob_[i] = 1, alias_[i] = i;
  for (int32_t i : small) prob_[i] = 1, alias_[i] = i;
}

namespace {

// Gate weights: descending, summing to one: k - c + u_c with u_c uniform in
// (0, 1] is strictly decreasing in c without sorting (only the order matters
// to score-based dropping; the spread is random).
void gate_weights(int top_k, Rng& rng, float* weight) {
  double sum = 0;
  double raw[64];
  for (int c = 0; c < top_k; ++c) sum += raw[c] = (top_k - c) + rng.uniform_pos();
  for (int c = 0; c < top_k; ++c) weight[c] = static_cast<float>(raw[c] / sum);
}

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

enum class Kind { kUniform, kZipf, kDirichlet, kTokenId, kDrift, kCorrelated, kGrouped };

// Stream ids: one per (purpose, step, layer), so batches are independent.
uint64_t stream_of(uint64_t purpose, int step, int layer) {
  return (purpose << 48) ^ (static_cast<uint64_t>(step) << 20) ^ static_cast<uint64_t>(layer);
}

class Generator : public RoutingGenerator {
 public:
  Generator(std::string spec, Kind kind, double a, double b, const MoeModelConfig& m, uint64_t seed,
            double spread = 0)
      : kind_(kind),
        a_(a),
        b_(b),
        spread_(spread),
        experts_(m.routed_experts),
        groups_(std::max(1, m.router_groups)),
        top_k_(m.top_k),
        seed_(seed),
        vocab_(static_cast<int>(std::min<int64_t>(m.vocab, 1 << 17))) {
    spec_ = std::move(spec);
    if (kind_ == Kind::kTokenId) {
      std::vector<double> w(vocab_);
      for (int i = 0; i < vocab_; ++i) w[i] = std::pow(i + 1.0, -a_);
      vocab_table_ = AliasTable(w);
    }
  }

  std::vector<double> popularity(int step, int layer) const override {
    std::vector<double> p(experts_, 1.0);
    switch (kind_) {
      case Kind::kUniform:
        break;
      case Kind::kTokenId: {
        // Expected load: each expert's share of the token-id mass.
        std::vector<double> w(vocab_);
        for (int i = 0; i < vocab_; ++i) w[i] = std::pow(i + 1.0, -a_);
        std::fill(p.begin(), p.end(), 0.0);
        for (int i = 0; i < vocab_; ++i) {
          int32_t chosen[64];
          token_experts(i, layer, chosen);
          for (int c = 0; c < top_k_; ++c) p[chosen[c]] += w[i];
        }
        break;
      }
      case Kind::kGrouped:
        grouped_popularity(layer, p);
        break;
      case Kind::kDirichlet: {
        Rng rng(seed_, stream_of(2, 0, layer));
        for (double& x : p) x = rng.gamma(a_) + 1e-300;
        break;
      }
      case Kind::kZipf:
      case Kind::kCorrelated:
      case Kind::kDrift: {
        // A per-layer random order of experts, popularity 1/(rank+1)^S.
        std::vector<int> order(experts_);
        std::iota(order.begin(), order.end(), 0);
        Rng rng(seed_, stream_of(3, 0, layer));
        for (int i = experts_ - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
        for (int r = 0; r < experts_; ++r) p[order[r]] = std::pow(r + 1.0, -a_);
        if (kind_ == Kind::kDrift) {
          // log-popularity random walk: the sum of `step` N(0, R) increments.
          std::vector<double> walk(experts_, 0.0);
          for (int s = 1; s <= step; ++s) {
            Rng srng(seed_, stream_of(4, s, layer));
            for (double& w : walk) w += b_ * srng.normal();
          }
          for (int e = 0; e < experts_; ++e) p[e] *= std::exp(walk[e]);
        }
        break;
      }
    }
    const double sum = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& x : p) x /= sum;
    return p;
  }

  using RoutingGenerator::generate;
  void generate(int step, int layer, std::span<const int64_t> tokens_per_source, RoutingBatch& out,
                const SequenceLayout& /*sequences: no per-sequence preference*/) const override {
    int64_t total = 0;
    for (int64_t t : tokens_per_source) total += t;
    out.resize(total, top_k_, experts_);
    Rng rng(seed_, stream_of(1, step, layer));
    const AliasTable table(batch_popularity(step, layer));
    // correlated: the previous layer's popularity order, to map a token's
    // class to "its" expert consistently across layers.
    int64_t t = 0;
    for (size_t src = 0; src < tokens_per_source.size(); ++src) {
      for (int64_t i = 0; i < tokens_per_source[src]; ++i, ++t) {
        out.source_rank[t] = static_cast<int32_t>(src);
        int32_t* chosen = &out.expert[t * top_k_];
        if (kind_ == Kind::kTokenId) {
          token_experts(vocab_table_.draw(rng), layer, chosen);
        } else if (kind_ == Kind::kCorrelated && rng.uniform() < b_) {
          // The token's class is stable across layers (hashed from its
          // position in the batch and the step), and so is its expert path.
          const uint64_t cls = mix64(static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ULL + t);
          for (int c = 0; c < top_k_; ++c) {
            chosen[c] = static_cast<int32_t>(mix64(cls + c * 0x632BE59BD9B4E019ULL + layer * 31) %
                                             experts_);
          }
          dedupe(chosen, table, rng);
        } else {
          for (int c = 0; c < top_k_; ++c) chosen[c] = table.draw(rng);
          dedupe(chosen, table, rng);
        }
        gate_weights(top_k_, rng, &out.weight[t * top_k_]);
      }
    }
  }

 private:
  // grouped:S:G: the router's groups of consecutive experts in a random
  // order per layer, group of rank g weighing 1/(g+1)^G, and inside each
  // group its experts in a random order, 1/(rank+1)^S of the group's weight.
  void grouped_popularity(int layer, std::vector<double>& p) const {
    Rng rng(seed_, stream_of(3, 0, layer));
    const int per_group = experts_ / groups_;
    std::vector<int> group_rank(groups_), order(per_group);
    std::iota(group_rank.begin(), group_rank.end(), 0);
    for (int i = groups_ - 1; i > 0; --i) std::swap(group_rank[i], group_rank[rng.below(i + 1)]);
    double within = 0;
    for (int r = 0; r < per_group; ++r) within += std::pow(r + 1.0, -a_);
    for (int g = 0; g < groups_; ++g) {
      std::iota(order.begin(), order.end(), 0);
      for (int i = per_group - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
      const double weight = std::pow(group_rank[g] + 1.0, -b_) / within;
      for (int r = 0; r < per_group; ++r) {
        p[g * per_group + order[r]] = weight * std::pow(r + 1.0, -a_);
      }
    }
  }
  // The popularity one (step, layer) batch draws from: the long-run one,
  // times exp(V z - V^2/2) per expert with z ~ N(0, 1) drawn per batch when
  // the spec has a spread V (the factor's mean is 1, so popularity() stays
  // the mean EPLB would record).
  std::vector<double> batch_popularity(int step, int layer) const {
    std::vector<double> p = popularity(step, layer);
    if (spread_ <= 0) return p;
    Rng rng(seed_, stream_of(5, step, layer));
    for (double& x : p) x *= std::exp(spread_ * rng.normal() - spread_ * spread_ / 2);
    return p;  // AliasTable normalises
  }
  // Token id -> its fixed experts at `layer`.
  void token_experts(int token_id, int layer, int32_t* chosen) const {
    uint64_t h = mix64(seed_ ^ (static_cast<uint64_t>(token_id) << 16) ^ layer);
    for (int c = 0; c < top_k_; ++c) {
      for (;;) {
        h = mix64(h + 0x9E3779B97F4A7C15ULL);
        const int32_t e = static_cast<int32_t>(h % experts_);
        if (std::find(chosen, chosen + c, e) == chosen + c) {
          chosen[c] = e;
          break;
        }
      }
    }
  }
  // Top-k experts are distinct: redraw duplicates (popular experts collide
  // often under skew; after a few tries fall back to the next free expert).
  void dedupe(int32_t* chosen, const AliasTable& table, Rng& rng) const {
    for (int c = 1; c < top_k_; ++c) {
      int tries = 0;
      while (std::find(chosen, chosen + c, chosen[c]) != chosen + c) {
        chosen[c] = ++tries < 32 ? table.draw(rng) : (chosen[c] + 1) % experts_;
      }
    }
  }

  Kind kind_;
  double a_, b_;
  double spread_;  // grouped:S:G:V's V: per-batch log-normal spread of popularity
  int experts_, groups_, top_k_;
  uint64_t seed_;
  int vocab_;
  AliasTable vocab_table_;
};

// A random bijection of [0, n) chosen by `key`, O(1) per lookup and no
// table: a 4-round Feistel network on the smallest even bit width holding n,
// whose outputs at or above n are fed back in until they fall below it
// (cycle walking, which keeps it a bijection of [0, n)).
class KeyedPermutation {
 public:
  KeyedPermutation(int n, uint64_t key) : n_(static_cast<uint32_t>(n)) {
    while ((uint64_t{1} << (2 * half_bits_)) < n_) ++half_bits_;
    mask_ = (uint32_t{1} << half_bits_) - 1;
    for (int r = 0; r < kRounds; ++r) round_key_[r] = mix64(key + 0x9E3779B97F4A7C15ULL * (r + 1));
  }
  int32_t operator()(int32_t x) const {
    uint32_t v = static_cast<uint32_t>(x);
    do {
      uint32_t left = v >> half_bits_, right = v & mask_;
      for (int r = 0; r < kRounds; ++r) {
        const uint32_t next = left ^ (static_cast<uint32_t>(mix64(round_key_[r] ^ right)) & mask_);
        left = right;
        right = next;
      }
      v = (left << half_bits_) | right;
    } while (v >= n_);
    return static_cast<int32_t>(v);
  }

 private:
  static constexpr int kRounds = 4;
  uint32_t n_;
  int half_bits_ = 0;
  uint32_t mask_ = 0;
  uint64_t round_key_[kRounds];
};

// sequence:S: every sequence draws its experts from 1/rank^S over its own
// random order of the experts (per sequence, step and layer), so what one
// all-to-all sees depends on how many sequences its sources mix.
class SequenceGenerator : public RoutingGenerator {
 public:
  SequenceGenerator(std::string spec, double exponent, const MoeModelConfig& m, uint64_t seed)
      : experts_(m.routed_experts), top_k_(m.top_k), seed_(seed) {
    spec_ = std::move(spec);
    std::vector<double> by_rank(experts_);
    for (int r = 0; r < experts_; ++r) by_rank[r] = std::pow(r + 1.0, -exponent);
    rank_table_ = AliasTable(by_rank);
  }

  // Over many sequences every expert is equally likely.
  std::vector<double> popularity(int, int) const override {
    return std::vector<double>(experts_, 1.0 / experts_);
  }

  using RoutingGenerator::generate;
  void generate(int step, int layer, std::span<const int64_t> tokens_per_source, RoutingBatch& out,
                const SequenceLayout& sequences) const override {
    const size_t sources = tokens_per_source.size();
    if ((!sequences.group_of_source.empty() && sequences.group_of_source.size() != sources) ||
        (!sequences.sequences_of_source.empty() &&
         sequences.sequences_of_source.size() != sources)) {
      throw std::logic_error("SequenceLayout: one entry per source expected");
    }
    int64_t total = 0;
    for (int64_t t : tokens_per_source) total += t;
    out.resize(total, top_k_, experts_);
    Rng rng(seed_, stream_of(1, step, layer));
    int64_t t = 0;
    for (size_t src = 0; src < sources; ++src) {
      const int64_t group = sequences.group_of_source.empty() ? static_cast<int64_t>(src)
                                                              : sequences.group_of_source[src];
      const int64_t count = std::clamp<int64_t>(
          sequences.sequences_of_source.empty() ? 1 : sequences.sequences_of_source[src], 1,
          std::max<int64_t>(1, tokens_per_source[src]));
      for (int64_t seq = 0; seq < count; ++seq) {
        // The sequence's own order of the experts, the same from every
        // source that holds part of it.
        const KeyedPermutation order(experts_, mix64(mix64(seed_ ^ stream_of(6, step, layer)) +
                                                     static_cast<uint64_t>(group)) +
                                                   static_cast<uint64_t>(seq));
        const int64_t tokens =
            tokens_per_source[src] / count + (seq < tokens_per_source[src] % count ? 1 : 0);
        for (int64_t i = 0; i < tokens; ++i, ++t) {
          out.source_rank[t] = static_cast<int32_t>(src);
          draw_experts(order, rng, &out.expert[t * top_k_]);
          gate_weights(top_k_, rng, &out.weight[t * top_k_]);
        }
      }
    }
  }

 private:
  // Distinct top-k experts: popularity ranks drawn from 1/rank^S, mapped
  // through the sequence's order (duplicates redrawn, then the next free).
  void draw_experts(const KeyedPermutation& order, Rng& rng, int32_t* chosen) const {
    for (int c = 0; c < top_k_; ++c) {
      int rank = rank_table_.draw(rng);
      int32_t expert = order(rank);
      for (int tries = 1; std::find(chosen, chosen + c, expert) != chosen + c; ++tries) {
        rank = tries < 32 ? rank_table_.draw(rng) : (rank + 1) % experts_;
        expert = order(rank);
      }
      chosen[c] = expert;
    }
  }

  int experts_, top_k_;
  uint64_t seed_;
  AliasTable rank_table_;
};

// Replays a recorded trace: the batch of (step mod steps, layer mod layers),
// resampled token by token with replacement to the requested counts, so a
// short real trace drives steps and batch sizes of any size.
class ReplayGenerator : public RoutingGenerator {
 public:
  ReplayGenerator(const std::string& spec, const std::string& path, const MoeModelConfig& m,
                  uint64_t seed, const std::string& where)
      : seed_(seed) {
    spec_ = spec;
    TraceReader r(path);
    const TraceHeader& h = r.header();
    if (h.experts != m.routed_experts || h.top_k != m.top_k) {
      throw_config_error(where,
                         fmt::format("trace {} has {} experts, top-{}; model {} has {}, "
                                     "top-{}",
                                     path, h.experts, h.top_k, m.name, m.routed_experts, m.top_k));
    }
    steps_ = h.steps;
    layers_ = h.moe_layers;
    batches_.resize(static_cast<size_t>(steps_) * layers_);
    RoutingBatch b;
    int step, layer;
    while (r.next(step, layer, b)) batches_[static_cast<size_t>(step) * layers_ + layer] = b;
    for (const auto& x : batches_) {
      if (x.tokens == 0) {
        throw_config_error(where, fmt::format("trace {} lacks some (step, layer) blocks", path));
      }
    }
    top_k_ = h.top_k;
    experts_ = h.experts;
  }

  std::vector<double> popularity(int step, int layer) const override {
    const RoutingBatch& b = batch(step, layer);
    std::vector<double> p(experts_, 0.0);
    for (int32_t e : b.expert) p[e] += 1;
    for (double& x : p) x = (x + 1e-3) / (b.expert.size() + 1e-3 * experts_);
    return p;
  }

  using RoutingGenerator::generate;
  void generate(int step, int layer, std::span<const int64_t> tokens_per_source, RoutingBatch& out,
                const SequenceLayout& /*sequences: the trace's tokens are drawn as recorded*/)
      const override {
    const RoutingBatch& in = batch(step, layer);
    int64_t total = 0;
    for (int64_t t : tokens_per_source) total += t;
    out.resize(total, top_k_, experts_);
    Rng rng(seed_, stream_of(5, step, layer));
    int64_t t = 0;
    for (size_t src = 0; src < tokens_per_source.size(); ++src) {
      for (int64_t i = 0; i < tokens_per_source[src]; ++i, ++t) {
        const int64_t from = static_cast<int64_t>(rng.below(static_cast<uint64_t>(in.tokens)));
        out.source_rank[t] = static_cast<int32_t>(src);
        for (int c = 0; c < top_k_; ++c) {
          out.expert[t * top_k_ + c] = in.expert[from * top_k_ + c];
          out.weight[t * top_k_ + c] = in.weight[from * top_k_ + c];
        }
      }
    }
  }

 private:
  const RoutingBatch& batch(int step, int layer) const {
    return batches_[static_cast<size_t>(step % steps_) * layers_ + layer % layers_];
  }
  uint64_t seed_;
  int steps_ = 0, layers_ = 0, top_k_ = 0, experts_ = 0;
  std::vector<RoutingBatch> batches_;
};

}  // namespace

bool generator_reads_sequences(const std::string& spec) {
  return spec.starts_with("sequence:");
}

std::unique_ptr<RoutingGenerator> make_generator(const std::string& spec,
                                                 const MoeModelConfig& model, uint64_t seed,
                                                 const std::string& path) {
  if (model.routed_experts < 1 || model.top_k < 1 || model.top_k > 64 ||
      model.top_k > model.routed_experts) {
    throw_config_error(path, fmt::format("model {} has no routable experts (experts {}, top-k {})",
                                         model.name, model.routed_experts, model.top_k));
  }
  if (spec.starts_with("replay:")) {
    return std::make_unique<ReplayGenerator>(spec, spec.substr(7), model, seed, path);
  }
  std::vector<std::string> parts;
  size_t at = 0;
  for (;;) {
    const size_t colon = spec.find(':', at);
    parts.push_back(spec.substr(at, colon == std::string::npos ? std::string::npos : colon - at));
    if (colon == std::string::npos) break;
    at = colon + 1;
  }
  auto number = [&](size_t i, double min, double max, const char* what) {
    if (i >= parts.size()) {
      throw_config_error(
          path, fmt::format("generator '{}' needs {} (e.g. {})", spec, what, parts[0] + ":1.0"));
    }
    char* end = nullptr;
    const double v = std::strtod(parts[i].c_str(), &end);
    if (end == parts[i].c_str() || *end != '\0' || !(v >= min && v <= max)) {
      throw_config_error(path, fmt::format("generator '{}': {} must be a number in [{}, {}]", spec,
                                           what, min, max));
    }
    return v;
  };
  auto arity = [&](size_t n) {
    if (parts.size() != n) {
      throw_config_error(path,
                         fmt::format("generator '{}': expected {} ':'-separated fields", spec, n));
    }
  };
  const std::string& kind = parts[0];
  if (kind == "uniform") {
    arity(1);
    return std::make_unique<Generator>(spec, Kind::kUniform, 0, 0, model, seed);
  }
  if (kind == "zipf") {
    arity(2);
    return std::make_unique<Generator>(spec, Kind::kZipf, number(1, 0, 10, "the exponent S"), 0,
                                       model, seed);
  }
  if (kind == "dirichlet") {
    arity(2);
    return std::make_unique<Generator>(spec, Kind::kDirichlet,
                                       number(1, 1e-3, 1e6, "the concentration A"), 0, model, seed);
  }
  if (kind == "token_id") {
    arity(2);
    return std::make_unique<Generator>(spec, Kind::kTokenId, number(1, 0, 10, "the exponent S"), 0,
                                       model, seed);
  }
  if (kind == "drift") {
    arity(3);
    return std::make_unique<Generator>(spec, Kind::kDrift, number(1, 0, 10, "the exponent S"),
                                       number(2, 0, 10, "the drift rate R"), model, seed);
  }
  if (kind == "correlated") {
    arity(3);
    return std::make_unique<Generator>(spec, Kind::kCorrelated, number(1, 0, 10, "the exponent S"),
                                       number(2, 0, 1, "the probability P"), model, seed);
  }
  if (kind == "sequence") {
    arity(2);
    return std::make_unique<SequenceGenerator>(spec, number(1, 0, 10, "the exponent S"), model,
                                               seed);
  }
  if (kind == "grouped") {
    if (parts.size() != 3 && parts.size() != 4) {
      throw_config_error(
          path, fmt::format("generator '{}': expected grouped:S:G or grouped:S:G:V", spec));
    }
    return std::make_unique<Generator>(spec, Kind::kGrouped, number(1, 0, 10, "the exponent S"),
                                       number(2, 0, 10, "the group exponent G"), model, seed,
                                       parts.size() == 4 ? number(3, 0, 5, "the spread V") : 0.0);
  }
  throw_config_error(path, fmt::format("unknown routing generator '{}' (known: uniform, zipf:S, "
                                       "dirichlet:A, token_id:S, drift:S:R, correlated:S:P, "
                                       "grouped:S:G[:V], sequence:S, replay:FILE)",
                                       spec));
}

}  // namespace moesim::workloads
