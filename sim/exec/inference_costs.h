#pragma once
// What one serving iteration costs on an inference instance: a forward pass
// of the model over the tokens every attention replica batched this
// iteration (prefill chunks and decode tokens), with the experts of each MoE
// layer fed by the routing those tokens got this iteration.
//
// The instance's GPUs are split into attention_dp replicas of tp GPUs each
// (attention and dense layers data-parallel across replicas, tensor-parallel
// within: SGLang's --enable-dp-attention, TensorRT-LLM's attention DP);
// routed experts are expert-parallel over all of them (ep x etp = GPUs).
// Per layer, every replica runs its attention (prefill: quadratic in the
// context; decode: reading its KV cache, MLA's latent or GQA's heads), the
// router and the shared experts, then the dispatch all-to-all (timed by the
// collective model), the experts on each EP rank (grouped GEMMs sized by the
// tokens each local expert received: at small batch bound by reading the
// weights of the experts touched), and the combine. All ranks wait for the
// slowest at each all-to-all, so the iteration is the sum over layers of the
// slowest rank's part between them.
//
// Two-batch overlap (SGLang two_batch_overlap.py, DeepSeek's inference
// system): each iteration's batch is split in two micro-batches whose
// communication runs while the other computes, in SGLang's stage order
// (exec/two_batch_overlap.h); splitting halves each GEMM's rows (so
// weight-bound kernels cost twice) and doubles per-call costs.

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "hwmodels/compute_cost.h"
#include "sim/collectives/collective.h"
#include "sim/exec/step_inputs.h"

namespace moesim::exec {

struct InferenceParallel {
  int tp = 1;            // tensor parallel within an attention replica
  int attention_dp = 1;  // attention replicas per instance
  int ep = 1;            // expert parallel; expert tensor parallel = gpus / ep
  coll::AllToAllAlgorithm a2a_algo = coll::AllToAllAlgorithm::kHierarchical;
  // SGLang's --deepep-mode auto: iterations with prompt tokens dispatch with
  // DeepEP's normal kernels (kHierarchical), decode-only iterations with the
  // low-latency ones (DeepEPMode.resolve, layers/moe/utils.py); a2a_algo is
  // then ignored.
  bool a2a_auto = false;
  hw::DType dispatch_dtype = hw::DType::kBf16;
  bool two_batch_overlap = false;
  // SMs the all-to-all kernels hold while they run (DeepEP's normal kernels:
  // Buffer.num_sms 20); low-latency kernels hold none while data is in
  // flight (their receive hook), so they slow nothing.
  int comm_sms = 20;

  int gpus() const { return tp * attention_dp; }
  int expert_tp() const { return gpus() / ep; }  // GPUs that split each expert slot
};

// What one attention replica runs in one iteration.
struct ReplicaBatch {
  struct Chunk {
    int64_t tokens = 0;   // prompt tokens computed now
    int64_t context = 0;  // tokens already in this sequence's KV cache
  };
  std::vector<Chunk> prefill;
  int64_t decode_sequences = 0;       // one new token each
  int64_t decode_context_tokens = 0;  // their KV lengths, summed
  // The cached keys they read on a windowed layer, summed
  // (ModelShape::windowed_cached_keys; 0 for a model without windows).
  int64_t decode_window_keys = 0;
  // Adds one decode token of a sequence with `context` cached tokens.
  void add_decode(const ModelShape& model, int64_t context);
  // Sequences that sample a token this iteration (decodes and prefills that
  // complete): the LM head's rows.
  int64_t sampled = 0;

  int64_t tokens() const;
  bool empty() const { return tokens() == 0; }
};

// Where an iteration's time went, on the slowest rank between all-to-alls.
struct IterationCost {
  double seconds = 0;
  double attention_s = 0, expert_s = 0, dispatch_s = 0, combine_s = 0, other_s = 0;
};

// Which sequences an iteration's tokens come from, per EP rank: the attention
// replica they come from and how many sequences (prefill chunks and decodes)
// that replica runs. Ranks of one replica hold parts of the same sequences.
// Empty spans: each rank's tokens are one sequence.
struct IterationSequences {
  std::span<const int32_t> replica_of_rank;
  std::span<const int64_t> sequences_of_rank;
};

// The routing of one MoE layer for this iteration's tokens (per EP rank
// counts, as exec::RoutingSample holds them).
class IterationRouting {
 public:
  virtual ~IterationRouting() = default;
  // Samples for the iteration's tokens, `tokens_per_rank` per EP rank (an EP
  // rank of expert_tp GPUs gathers its GPUs' tokens) from `sequences`; MoE
  // layer j uses samples[j mod size]. Valid until the next call.
  virtual const std::vector<RoutingSample>& route(uint64_t iteration,
                                                  std::span<const int64_t> tokens_per_rank,
                                                  const IterationSequences& sequences) = 0;
  const std::vector<RoutingSample>& route(uint64_t iteration,
                                          std::span<const int64_t> tokens_per_rank) {
    return route(iteration, tokens_per_rank, IterationSequences{});
  }
};

// One micro-batch's costs in one layer on the slowest rank, seconds alone.
struct LayerCost {
  double attention_prep = 0;  // norms, projections (and TP all-reduces: see `other`)
  double attention_core = 0;  // the attention kernel and the KV-cache write
  double router = 0;          // gate GEMM, top-k, permutation
  double other = 0;           // TP all-reduces
  double shared = 0, dense = 0, expert = 0;
  double dispatch = 0, combine = 0;  // the all-to-alls alone
  // Of attention_prep, shared and dense: the seconds in block-FP8 linear
  // GEMMs, which SGLang runs on DeepGEMM (SGL_ENABLE_JIT_DEEPGEMM; FP8
  // serving only, 0 otherwise) and so on the SMs its two-batch-overlapped
  // prefill gives DeepGEMM, like the routed experts (two_batch_overlap.h).
  double attention_prep_gemm = 0, shared_gemm = 0, dense_gemm = 0;
  bool moe = false;
};

// Seconds one collective takes alone (the scenario layer binds the cluster's
// collective model).
using CollectiveSeconds = std::function<double(const coll::Collective&)>;

class InferenceCostModel {
 public:
  // `gpu_ranks`: the instance's GPUs (global ranks, for the collective
  // model): replica r is [r tp, (r+1) tp), EP rank e is [e etp, (e+1) etp);
  // `weight_dtype` prices GEMMs and weight reads; `gpu_sms`: the GPU's SMs
  // (0: unknown, no slowdown from communication kernels).
  InferenceCostModel(const ModelShape& model, const InferenceParallel& parallel,
                     hw::DType weight_dtype, hw::DType kv_dtype, const hw::ComputeCostModel& cost,
                     CollectiveSeconds collective, std::vector<int> gpu_ranks, int gpu_sms);

  // One iteration of `replicas` (one entry per attention replica).
  IterationCost iteration(std::span<const ReplicaBatch> replicas, IterationRouting& routing,
                          uint64_t iteration_index) const;

  // What iteration() plays, per micro-batch (two with two-batch overlap): each
  // layer's parts, each alone on the slowest rank.
  std::vector<std::vector<LayerCost>> layer_parts(std::span<const ReplicaBatch> replicas,
                                                  IterationRouting& routing,
                                                  uint64_t iteration_index) const;

  // KV-cache bytes one token of one sequence takes on each GPU of its replica.
  double kv_bytes_per_token_per_gpu() const;
  const ModelShape& model() const { return model_; }

 private:
  struct AttentionSeconds {
    double prep = 0, core = 0;
    double prep_gemm = 0;  // of prep: block-FP8 linears (DeepGEMM)
  };
  AttentionSeconds attention_seconds(const ReplicaBatch& batch, bool windowed) const;
  // What a prefill chunk's queries reach on a full or a windowed layer.
  struct ChunkReach {
    double keys = 0;   // attended by all its queries together
    int64_t span = 0;  // the most keys one query reaches
    int64_t read = 0;  // tokens whose keys and values the kernel reads, its own included
  };
  ChunkReach reach(const ReplicaBatch::Chunk& chunk, bool windowed) const;
  struct FfnSeconds {
    double all = 0, gemm = 0;  // gemm: of all, block-FP8 linears (DeepGEMM)
  };
  FfnSeconds ffn_seconds(int64_t tokens, int64_t width) const;
  // Seconds of a linear layer's GEMM; block-FP8 ones also add to `deep_gemm`.
  double linear_seconds(int64_t m, int64_t n, int64_t k, double& deep_gemm) const;
  double expert_seconds(const RoutingSample& sample, int rank, coll::AllToAllAlgorithm algo) const;
  double all_to_all_seconds(const RoutingSample& sample, bool combine,
                            coll::AllToAllAlgorithm algo) const;
  double tp_all_reduce_seconds(int64_t tokens) const;
  // Quantizing `elements` BF16 activations for an FP8 GEMM (0 otherwise).
  double input_quant_seconds(double elements) const;
  // Per layer, one micro-batch's parts.
  std::vector<LayerCost> layers(std::span<const ReplicaBatch> replicas, IterationRouting& routing,
                                uint64_t routing_index, coll::AllToAllAlgorithm algo) const;
  // The all-to-all kernels of an iteration with (or without) prompt tokens.
  coll::AllToAllAlgorithm algorithm(bool prompt) const;
  // The embedding and the LM head, once per iteration.
  double head_seconds(std::span<const ReplicaBatch> replicas) const;
  // The dtype of the layers FP8 serving leaves unquantized: the LM head and
  // the router gate (SGLang's Fp8Config.get_quant_method quantizes linear
  // layers, fused MoE experts and the KV cache only, so ParallelLMHead and
  // DeepSeek's MoEGate weight stay BF16; layers/quantization/fp8.py).
  hw::DType unquantized_dtype() const {
    return weight_dtype_ == hw::DType::kFp8 ? hw::DType::kBf16 : weight_dtype_;
  }

  const ModelShape& model_;
  InferenceParallel parallel_;
  hw::DType weight_dtype_, kv_dtype_;
  const hw::ComputeCostModel& cost_;
  CollectiveSeconds collective_;
  std::vector<int> gpu_ranks_;
  std::vector<int> ep_ranks_;  // the first GPU of each EP rank
  int gpu_sms_ = 0;
};

}  // namespace moesim::exec
