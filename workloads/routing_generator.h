#pragma once
// Seeded routing-trace generators. A generator is created from a spec string:
//
//   uniform              every expert equally likely
//   zipf:S               expert popularity ~ 1/rank^S, a different order per layer
//   dirichlet:A          popularity ~ Dirichlet(A) per layer (small A: skewed)
//   token_id:S           tokens drawn from a Zipf(S) vocabulary; each token id
//                        has a fixed set of experts per layer (OpenMoE's
//                        context-independent specialisation)
//   drift:S:R            zipf:S whose log-popularity random-walks by N(0, R)
//                        per step (hot experts shift over training)
//   correlated:S:P       zipf:S, and with probability P a token's expert at
//                        layer l+1 follows from its expert at layer l (ExFlow)
//   grouped:S:G[:V]      the router's expert groups (model router.groups, one
//                        group when it has none) in a random order per layer,
//                        weighing 1/rank^G, and inside each group its experts
//                        1/rank^S (DeepSeek-V3's hot experts sit together in a
//                        few groups: SGLang's heat map eplb-stat.png). With V,
//                        each (step, layer) batch multiplies an expert's
//                        popularity by exp(V z - V^2/2), z ~ N(0, 1): a batch
//                        prefers its own experts, which a placement made from
//                        long-run statistics (EPLB) cannot follow
//   sequence:S           each sequence (document, request) prefers its own
//                        experts: popularity 1/rank^S over a random order of
//                        the experts drawn for each sequence of each (step,
//                        layer) batch, so the corpus as a whole is balanced
//                        while one sequence is not.
//                        This is what a router trained with global-batch load
//                        balancing does (Qwen3's; Qiu et al., "Demons in the
//                        Detail", ACL 2025: balance over the global batch
//                        lets experts specialise by domain). An all-to-all's
//                        imbalance then depends on how many sequences its
//                        ranks' tokens mix (SequenceLayout)
//   replay:FILE          a recorded .moetrace, resampled token by token (with
//                        replacement) to any batch size, step and layer count
//
// Every (step, layer) batch is generated independently from its own random
// stream, so any subset can be generated in any order with the same result.

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "workloads/model_config.h"
#include "workloads/routing.h"

namespace moesim::workloads {

// Which sequences a batch's tokens come from, for generators whose
// preference is per sequence (sequence:S; the others ignore it). Source s's
// tokens are split evenly among sequences_of_source[s] sequences of group
// group_of_source[s]; sources of one group hold parts of the same sequences
// (in training the tensor- and context-parallel ranks of one data-parallel
// replica, in serving the GPUs of one attention replica). Empty spans: each
// source is a group of one sequence; otherwise both hold one entry per
// source, and a count below 1 counts as 1.
struct SequenceLayout {
  std::span<const int32_t> group_of_source;
  std::span<const int64_t> sequences_of_source;
};

class RoutingGenerator {
 public:
  virtual ~RoutingGenerator() = default;
  // Fills `out` with tokens_per_source[r] tokens from each source rank r,
  // from the sequences `sequences` says.
  virtual void generate(int step, int moe_layer, std::span<const int64_t> tokens_per_source,
                        RoutingBatch& out, const SequenceLayout& sequences) const = 0;
  // Each source its own single sequence.
  void generate(int step, int moe_layer, std::span<const int64_t> tokens_per_source,
                RoutingBatch& out) const {
    generate(step, moe_layer, tokens_per_source, out, SequenceLayout{});
  }
  // The expected share of routings per expert at (step, layer): for
  // grouped:S:G:V the long-run mean, not one batch's draw.
  virtual std::vector<double> popularity(int step, int moe_layer) const = 0;
  const std::string& spec() const { return spec_; }

 protected:
  std::string spec_;
};

// Throws moesim::Error naming `path` for an unknown or malformed spec.
std::unique_ptr<RoutingGenerator> make_generator(const std::string& spec,
                                                 const MoeModelConfig& model, uint64_t seed,
                                                 const std::string& path);

// Whether the generator `spec` names reads a SequenceLayout (callers may
// leave it empty otherwise, and share routings between layouts).
bool generator_reads_sequences(const std::string& spec);

// Walker's alias method: O(1) draws from a discrete distribution.
class AliasTable {
 public:
  AliasTable() = default;
  explicit AliasTable(std::span<const double> weights);
  template <class Rng>
  int draw(Rng& rng) const {
    const uint64_t r = rng.next_u64();
    const uint32_t i = static_cast<uint32_t>(((r >> 32) * n_) >> 32);
    const double u = static_cast<double>(r & 0xFFFFFFFFu) * 0x1.0p-32;
    return u < prob_[i] ? static_cast<int>(i) : alias_[i];
  }
  size_t size() const { return n_; }

 private:
  uint64_t n_ = 0;
  std::vector<double> prob_;
  std::vector<int32_t> alias_;
};

}  // namespace moesim::workloads
