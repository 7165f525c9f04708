#include "sim/exec/memory_model.h"

#include <catch2/catch.hpp>

#include "hwmodels/gpu.h"
#include "hwmodels/presets.h"
#include "tests/exec/test_costs.h"

namespace moesim::exec {
namespace {

TEST_CASE("weights, gradients and optimizer states per ZeRO stage match hand counts",
          "[exec][memory]") {
  const ModelShape m = testing::tiny_moe(2);
  ParallelConfig p;
  p.dp = 4;
  p.ep = 2;  // expert-data-parallel degree 2
  TrainingWorkload w;
  w.seq_len = 128;
  w.global_batch = 4;
  // Per layer: attention 4M + router 8K dense; 8 experts / ep 2 = 4 local experts.
  const double dense = 2 * (4.0 * 1024 * 1024 + 1024.0 * 8);
  const double experts = 2 * 4 * (3.0 * 1024 * 2048);
  // Megatron-FSDP's two unsharded units (layers): ZeRO-3 gathers their BF16
  // weights, ZeRO-2/3 hold their FP32 gradients until reduce-scattered.
  const double unit = (dense + experts) / 2;
  for (int zero : {0, 1, 2, 3}) {
    p.zero_stage = zero;
    const MemoryEstimate est = estimate_memory(m, p, w, {0, 0}, 80e9, 0);
    const MemoryBreakdown& b = est.per_stage[0];
    INFO("zero " << zero);
    const double w_sh = zero >= 3 ? dense / 4 + experts / 2 : dense + experts;
    const double g_sh = zero >= 2 ? dense / 4 + experts / 2 : dense + experts;
    const double o_sh = zero >= 1 ? dense / 4 + experts / 2 : dense + experts;
    CHECK(b.weights_bytes == Approx(2 * w_sh + (zero >= 3 ? 2 * 2 * unit : 0)));
    CHECK(b.gradients_bytes == Approx(4 * g_sh + (zero >= 2 ? 2 * 4 * unit : 0)));
    CHECK(b.optimizer_bytes == Approx(12 * o_sh));
  }
}

TEST_CASE("the precision-aware optimizer keeps 16-bit moments and BF16 master remainders",
          "[exec][memory]") {
  const ModelShape m = testing::tiny_moe(2);
  ParallelConfig p;
  p.dp = 4;
  p.ep = 2;
  TrainingWorkload w;
  w.seq_len = 128;
  w.global_batch = 4;
  const double sharded = 2 * (4.0 * 1024 * 1024 + 1024.0 * 8) / 4 + 2 * 4 * (3.0 * 1024 * 2048) / 2;
  auto optimizer_bytes = [&](hw::DType compute) {
    w.compute_dtype = compute;
    return estimate_memory(m, p, w, {0, 0}, 80e9, 0).per_stage[0].optimizer_bytes;
  };
  // Default: FP32 master and moments, 12 bytes; Adam's step moves 30.
  CHECK(optimizer_bytes(hw::DType::kBf16) == Approx(12 * sharded));
  CHECK(p.adam.step_bytes(hw::DType::kBf16) == 30);
  // DeepSeek-V3 (report 3.3.3): BF16 moments, FP32 master: 4 + 2 + 2.
  p.adam.precision_aware = true;
  p.adam.exp_avg = p.adam.exp_avg_sq = hw::DType::kBf16;
  CHECK(optimizer_bytes(hw::DType::kFp8) == Approx(8 * sharded));
  CHECK(p.adam.step_bytes(hw::DType::kFp8) == 4 + 2 * 8 + 2);
  // BF16 training keeps only the master weight's 16-bit remainder: 2 + 2 + 2;
  // the step also reads the BF16 weight the remainder completes.
  CHECK(optimizer_bytes(hw::DType::kBf16) == Approx(6 * sharded));
  CHECK(p.adam.step_bytes(hw::DType::kBf16) == 4 + 2 * 6 + 2 + 2);
  p.adam.store_param_remainders = false;
  CHECK(optimizer_bytes(hw::DType::kBf16) == Approx(8 * sharded));
  // FP32 moments under the precision-aware optimizer: 2 + 4 + 4.
  p.adam.store_param_remainders = true;
  p.adam.exp_avg = p.adam.exp_avg_sq = hw::DType::kFp32;
  CHECK(optimizer_bytes(hw::DType::kBf16) == Approx(10 * sharded));
}

// The small MoE profile below, worked by hand: 2 MoE layers (hidden 1024, 8
// heads x 128 = MHA, 8 experts of width 2048, top-2, SwiGLU, no shared
// experts), vocabulary 1000; tp 2 with sequence parallelism, pp 2 (1F1B), ep 2,
// dp 1, the all-to-all dispatcher, 4 micro-batches of 1 x 128 tokens, BF16.
struct HandCase {
  ModelShape model = testing::tiny_moe(2);
  ParallelConfig parallel;
  TrainingWorkload workload;
  RoutedCopies routed{200, 256};  // copies a GPU's experts receive per layer: mean, busiest
  HandCase() {
    model.vocab = 1000;
    parallel.tp = 2;
    parallel.sequence_parallel = true;
    parallel.pp = 2;
    parallel.ep = 2;
    parallel.a2a_algo = coll::AllToAllAlgorithm::kDirect;
    workload.seq_len = 128;
    workload.global_batch = 4;
  }
  MemoryEstimate estimate(double reserved = 0) const {
    return estimate_memory(model, parallel, workload, routed, 80e9, reserved);
  }
};

TEST_CASE("a small MoE's memory profile matches the hand count to the byte", "[exec][memory]") {
  const HandCase hc;
  // Bytes per token of the micro-batch, one layer (/2: tensor or sequence
  // parallel share of tp 2; 4 heads per GPU):
  //   residual into the fused input norm       1024 x 2 / 2 = 1024
  //   its output, linear_qkv's input           1024 x 2 / 2 = 1024
  //   Q, K, V (4 + 4 + 4 heads x 128)          1536 x 2     = 3072
  //   attention output O (FA and linear_proj)   512 x 2     = 1024
  //   FP32 softmax statistics                     4 x 4     =   16
  //   attention block output (pre-MLP norm in) 1024 x 2 / 2 = 1024
  //   pre-MLP norm output (router input)       1024 x 2 / 2 = 1024
  //   router FP32 scores                          8 x 4 / 2 =   16
  //   permute map int32 [2 x 8 + 1]              17 x 4 / 2 =   34
  //                                                    total 8258
  // Per routed copy: fc1 input 1024 x 2 + fc1 output 2 x 2048 x 2 + fc2 input
  // 2048 x 2 + FP32 probability 4 = 2048 + 8192 + 4096 + 4 = 14340.
  const LayerSavedBytes layer =
      layer_saved_bytes(hc.model, hc.parallel, hc.workload.compute_dtype, 0);
  CHECK(layer.per_token == 8258);
  CHECK(layer.per_routed_copy == 14340);

  const MemoryEstimate est = hc.estimate(1 << 30);
  REQUIRE(est.per_stage.size() == 2);
  // Static, per stage (one layer each, ZeRO 1 over dp 1): attention 4M / 2 +
  // router 8192 / 2 = 2,101,248 dense; 4 local experts x 6,291,456 =
  // 25,165,824 routed; 27,267,072 parameters x 2 / 4 / 12 bytes.
  for (const MemoryBreakdown& b : est.per_stage) {
    CHECK(b.weights_bytes == 54534144);
    CHECK(b.gradients_bytes == 109068288);
    CHECK(b.optimizer_bytes == 327204864);
    CHECK(b.reserved_bytes == 1 << 30);
  }
  // Stage 0, 1F1B: warm-up 1 then forward 1 before the first backward: 2
  // micro-batches of layer 0 plus the embedding's int64 token ids:
  // 2 x (8258 x 128 + 128 x 8) = 2,116,096. Routed copies of 2 MoE layers
  // held: (200 + 256) x 14340 = 6,539,040.
  const MemoryBreakdown& s0 = est.per_stage[0];
  CHECK(s0.inflight_microbatches == 2);
  CHECK(s0.activations_bytes == 2116096);
  CHECK(s0.routed_tokens_bytes == 6539040);
  CHECK(s0.logits_bytes == 0);
  // Stage 1: one micro-batch of layer 1 plus the final norm's input and the
  // output layer's input, 2 x 1024 x 2 / 2 x 128 = 262,144: 1,319,168; routed
  // 256 x 14340 = 3,671,040; logits 128 tokens x 500 (vocab / tp) x (BF16
  // logits 2 + FP32 softmax-then-gradient 4) = 384,000.
  const MemoryBreakdown& s1 = est.per_stage[1];
  CHECK(s1.inflight_microbatches == 1);
  CHECK(s1.activations_bytes == 1319168);
  CHECK(s1.routed_tokens_bytes == 3671040);
  CHECK(s1.logits_bytes == 384000);
  // Totals: 490,807,296 static + 2^30 reserved + the above.
  CHECK(s0.total_bytes() == 1573204256);
  CHECK(s1.total_bytes() == 1569923328);
  CHECK(est.peak_stage == 0);
  CHECK(est.peak_bytes == 1573204256);
}

TEST_CASE("selective recompute frees what Megatron-Core's recompute modules free",
          "[exec][memory]") {
  HandCase hc;
  hc.parallel.recompute = Recompute::kSelective;
  // layernorm frees the pre-MLP norm's output (1024 per token; the input norm
  // is fused into linear_qkv and stays), moe_act the activation output (4096
  // per copy): 8258 - 1024 = 7234, 14340 - 4096 = 10244.
  const LayerSavedBytes sel = layer_saved_bytes(hc.model, hc.parallel, hw::DType::kBf16, 0);
  CHECK(sel.per_token == 7234);
  CHECK(sel.per_routed_copy == 10244);
  CHECK(sel.all_per_token == 8258);
  const MemoryEstimate est = hc.estimate();
  CHECK(est.per_stage[0].activations_bytes == 2 * (7234 * 128 + 128 * 8));
  CHECK(est.per_stage[0].routed_tokens_bytes == (200 + 256) * 10244);

  // Full recompute keeps each layer's input (1024 x 2 / 2 per token); during a
  // backward the layer being recomputed holds everything, its routed copies
  // at the busiest GPU's count: stage 0 peaks with 2 checkpoints held.
  hc.parallel.recompute = Recompute::kFull;
  const MemoryEstimate full = hc.estimate();
  CHECK(full.per_stage[0].activations_bytes == 2 * (1024 * 128 + 128 * 8) + 8258 * 128);
  CHECK(full.per_stage[0].routed_tokens_bytes == 256 * 14340);

  // MLA (DeepSeek-V3 widths, 4 heads): mla_up_proj frees Q, K, V after
  // up-projection and RoPE, layernorm the separate input norm's output (kept
  // once for q_down and kv_down in BF16).
  ModelShape mla = hc.model;
  mla.q_lora_rank = 1536;
  mla.kv_lora_rank = 512;
  mla.qk_nope_head_dim = 128;
  mla.qk_rope_head_dim = 64;
  mla.v_head_dim = 128;
  hc.parallel.recompute = Recompute::kNone;
  const LayerSavedBytes none = layer_saved_bytes(mla, hc.parallel, hw::DType::kBf16, 0);
  hc.parallel.recompute = Recompute::kSelective;
  const LayerSavedBytes mla_sel = layer_saved_bytes(mla, hc.parallel, hw::DType::kBf16, 0);
  const double qkv = 4 * (192 + 192 + 128) * 2;  // per GPU: 4 heads
  const double input_norm = 1024 * 2 / 2, pre_mlp_norm = 1024 * 2 / 2;
  CHECK(none.per_token - mla_sel.per_token == qkv + input_norm + pre_mlp_norm);
}

TEST_CASE("FP8 GEMMs keep their own quantized inputs unless a kernel keeps the BF16 one",
          "[exec][memory]") {
  const HandCase hc;
  // Transformer Engine FP8 linears save a 1-byte copy of their input; the
  // kernels that keep BF16 tensors (attention, router, SwiGLU) keep them, and
  // linear_proj shares attention's BF16 output (save_original_input).
  //   fused norm output, linear_qkv's input: 1024 x 1 / 2 = 512 (was 1024)
  //   per copy: fc1 input 1024 + fc1 output 8192 + fc2 input 2048 + 4 = 11268
  const LayerSavedBytes fp8 = layer_saved_bytes(hc.model, hc.parallel, hw::DType::kFp8, 0);
  CHECK(fp8.per_token == 8258 - 512);
  CHECK(fp8.per_routed_copy == 11268);
}

TEST_CASE("in-flight passes follow Megatron-Core's schedules", "[exec][memory]") {
  // 1F1B: stage s holds pp - s micro-batches (warm-up pp - s - 1, plus one).
  const ModelShape m = testing::tiny_moe(4);
  ParallelConfig p;
  p.pp = 4;
  TrainingWorkload w;
  w.seq_len = 1024;
  w.global_batch = 16;
  const MemoryEstimate est = estimate_memory(m, p, w, {2048, 2048}, 80e9, 0);
  for (int s = 0; s < 4; ++s) CHECK(est.per_stage[s].inflight_microbatches == 4 - s);
  // Fewer micro-batches than stages: all of them.
  w.global_batch = 2;
  CHECK(estimate_memory(m, p, w, {2048, 2048}, 80e9, 0).per_stage[0].inflight_microbatches == 2);

  // Interleaved (schedules.py get_pp_rank_microbatches): num_warmup_microbatches
  // = 2 (pp - s - 1) + (v - 1) pp, one more forward before the first backward.
  const ModelShape eight = testing::tiny_moe(16);
  p.schedule = PipelineSchedule::kInterleaved;
  p.virtual_stages = 2;
  w.global_batch = 8;
  const MemoryEstimate il = estimate_memory(eight, p, w, {2048, 2048}, 80e9, 0);
  for (int s = 0; s < 4; ++s) {
    CHECK(il.per_stage[s].inflight_microbatches == 2 * (4 - s - 1) + (2 - 1) * 4 + 1);
  }
}

TEST_CASE("activations agree with Megatron-Core's theoretical memory estimator", "[exec][memory]") {
  // megatron/training/theoretical_memory_usage.py (compute_activation_memory,
  // sequence parallel + selective): a layer keeps s b h (18 + 4 f / h) / t
  // bytes, Korthikanti et al. 2022 Table 2 with the attention scores gone. Two
  // of the 18 are dropout masks (1 byte per element after attention and after
  // the MLP) that runs with hidden dropout 0 do not keep; fused attention adds
  // FP32 softmax statistics, 4 bytes per head. A GPT layer (GeLU, MHA):
  ModelShape gpt;
  gpt.layers = 16;
  gpt.hidden = 1024;
  gpt.heads = 16;
  gpt.kv_heads = 16;
  gpt.head_dim = 64;
  gpt.dense_ffn = 4096;
  gpt.swiglu = false;
  gpt.moe_layer.assign(16, false);
  ParallelConfig p;
  p.tp = 2;
  p.sequence_parallel = true;
  const double h = 1024, f = 4096, heads = 16, t = 2;
  const double megatron = h * (18 + 4 * f / h) / t;
  const double dropout_masks = 2 * h / t, softmax_stats = 4 * heads / t;
  const LayerSavedBytes layer = layer_saved_bytes(gpt, p, hw::DType::kBf16, 0);
  CHECK(layer.per_token == megatron - dropout_masks + softmax_stats);  // 16416

  // Interleaving: the estimator's first stage holds num_layers x (1 + (pp - 1)
  // / (pp v)) layer-micro-batches; pp 4, v 2, 16 layers: 22, i.e. 11 passes of
  // 2 layers. On top, the embedding's token ids (8 bytes per token) for each
  // pass of chunk 0 held: backward runs the last chunk first, so the peak
  // comes with 8 of them (micro-batches 0-7) and 3 of chunk 1.
  p.pp = 4;
  p.schedule = PipelineSchedule::kInterleaved;
  p.virtual_stages = 2;
  TrainingWorkload w;
  w.seq_len = 256;
  w.global_batch = 8;
  const MemoryEstimate est = estimate_memory(gpt, p, w, {0, 0}, 80e9, 0);
  const double layer_microbatches = 16 * (1 + 3.0 / (4 * 2));
  CHECK(layer_microbatches == 22);
  CHECK(est.per_stage[0].inflight_microbatches == 11);
  CHECK(est.per_stage[0].activations_bytes == 22 * 16416 * 256 + 8 * 8 * 256);
}

TEST_CASE("fused and unfused cross entropy keep the same logits; the estimate says which",
          "[exec][memory]") {
  // fusions/fused_cross_entropy.py and tensor_parallel/cross_entropy.py both
  // turn one FP32 copy of the BF16 logits into the softmax and then, in place,
  // the gradient: 6 bytes per logit, not FP32 logits plus an FP32 gradient (8).
  HandCase hc;
  const MemoryEstimate fused = hc.estimate();
  CHECK(fused.cross_entropy_loss_fusion);
  hc.parallel.cross_entropy_loss_fusion = false;
  const MemoryEstimate unfused = hc.estimate();
  CHECK_FALSE(unfused.cross_entropy_loss_fusion);
  CHECK(unfused.per_stage[1].logits_bytes == fused.per_stage[1].logits_bytes);
  CHECK(fused.per_stage[1].logits_bytes == 128 * (1000 / 2) * (2 + 4));
  CHECK(fused.per_stage[0].logits_bytes == 0);  // only the stage with the loss
}

// moe_a2a_overlap "1f1b": one more warm-up forward (num_warmup_microbatches
// += 1) holds the passes plain 1F1B holds at its first steady-state forward,
// 2 (pp - s - 1) + (v - 1) pp + 1; each pair then frees a backward layer as it
// adds a forward layer, so the peak is one layer (and its routed copies)
// above plain 1F1B's.
TEST_CASE("combined 1F1B holds one layer more than 1F1B", "[exec][memory]") {
  const ModelShape m = testing::tiny_moe(16);
  ParallelConfig p;
  p.pp = 4;
  p.ep = 1;
  p.schedule = PipelineSchedule::kInterleaved;
  p.virtual_stages = 2;
  p.moe_a2a_overlap = MoeA2aOverlap::kOneFOneB;
  TrainingWorkload w;
  w.seq_len = 1024;
  w.global_batch = 8;
  const MemoryEstimate il = estimate_memory(m, p, w, {2048, 2048}, 80e9, 0);
  for (int s = 0; s < 4; ++s) {
    CHECK(il.per_stage[s].inflight_microbatches == 2 * (4 - s - 1) + (2 - 1) * 4 + 1);
  }
  ParallelConfig one;
  w.global_batch = 4;
  const MemoryEstimate plain = estimate_memory(m, one, w, {2048, 2048}, 80e9, 0);
  one.moe_a2a_overlap = MoeA2aOverlap::kOneFOneB;
  const MemoryEstimate paired = estimate_memory(m, one, w, {2048, 2048}, 80e9, 0);
  CHECK(paired.per_stage[0].inflight_microbatches == 1);
  // One more layer of activations and routed copies at the peak.
  const double layer = layer_saved_bytes(m, one, w.compute_dtype, 0).per_token * w.seq_len;
  CHECK(paired.per_stage[0].activations_bytes - plain.per_stage[0].activations_bytes ==
        Approx(layer));
  CHECK(paired.per_stage[0].routed_tokens_bytes > plain.per_stage[0].routed_tokens_bytes);
}

// An MTP module on the last stage holds its layer, eh_proj and its norms,
// and (the stage embeds the shifted tokens itself) a copy of the embedding;
// its loss keeps a second set of logits until its backward.
TEST_CASE("an MTP module's weights and logits on its stage", "[exec][memory]") {
  ModelShape m = testing::tiny_moe(5);
  m.vocab = 32000;
  m.embedding_params = m.output_params = 32000.0 * 1024;
  ParallelConfig p;
  p.pp = 2;
  TrainingWorkload w;
  w.seq_len = 1024;
  w.global_batch = 4;
  ModelShape mtp = m;
  mtp.mtp_layers = 1;  // four model layers and the module's
  mtp.mtp_module_params = 2.0 * 1024 * 1024 + 3 * 1024;
  ModelShape four = testing::tiny_moe(4);
  four.vocab = m.vocab;
  four.embedding_params = four.output_params = m.embedding_params;
  const LocalParams plain = local_params(four, p, 1), with = local_params(mtp, p, 1);
  const LayerParams layer = layer_params(mtp, p, 4);
  CHECK(with.dense - plain.dense ==
        Approx(layer.dense + mtp.mtp_module_params + mtp.embedding_params));
  CHECK(with.experts - plain.experts == Approx(layer.experts));
  CHECK(local_params(mtp, p, 0).dense == Approx(local_params(four, p, 0).dense));
  const MemoryEstimate a = estimate_memory(four, p, w, {1024, 1024}, 80e9, 0);
  const MemoryEstimate b = estimate_memory(mtp, p, w, {1024, 1024}, 80e9, 0);
  CHECK(b.per_stage[1].logits_bytes == Approx(2 * a.per_stage[1].logits_bytes));
  CHECK(b.per_stage[0].logits_bytes == 0);
}

// A layout's standalone MTP stage ("Et|t|m|L"): the module's stage embeds
// the shifted tokens (its own embedding copy, beside stage 0's on the same
// rank) but holds no output layer; the last stage runs both heads and keeps
// both sets of logits (Megatron-Core v0.16 gpt_model.py: the output layer is
// built where post_process is set, the embedding where pre_process or
// mtp_process is).
TEST_CASE("a standalone MTP stage holds an embedding, the last stage both heads",
          "[exec][memory]") {
  ModelShape m = testing::tiny_moe(3);
  m.mtp_layers = 1;  // two model layers and the module's
  m.vocab = 32000;
  m.embedding_params = m.output_params = 32000.0 * 1024;
  m.mtp_module_params = 2.0 * 1024 * 1024 + 3 * 1024;
  ParallelConfig p;
  p.pp = 2;
  p.schedule = PipelineSchedule::kInterleaved;
  p.virtual_stages = 2;
  p.layout = {{1, 0, true, false}, {1, 0, false, false}, {0, 1, false, false}, {0, 0, false, true}};
  TrainingWorkload w;
  w.seq_len = 1024;
  w.global_batch = 4;
  const LayerParams l0 = layer_params(m, p, 0), l1 = layer_params(m, p, 1),
                    module = layer_params(m, p, 2);
  CHECK(local_params(m, p, 0).dense ==
        Approx(l0.dense + module.dense + 2 * m.embedding_params + m.mtp_module_params));
  CHECK(local_params(m, p, 1).dense == Approx(l1.dense + m.output_params));
  ModelShape plain = testing::tiny_moe(2);
  plain.vocab = m.vocab;
  ParallelConfig two_stages;
  two_stages.pp = 2;
  const MemoryEstimate a = estimate_memory(plain, two_stages, w, {1024, 1024}, 80e9, 0);
  const MemoryEstimate b = estimate_memory(m, p, w, {1024, 1024}, 80e9, 0);
  CHECK(b.per_stage[0].logits_bytes == 0);
  CHECK(b.per_stage[1].logits_bytes == Approx(2 * a.per_stage[1].logits_bytes));
}

// DualPipe (README table): 2x parameters and pp + 1 activations per device.
// Rank r holds stages r and pp-1-r; walking DualPipe.step for pp = 4 and 8
// micro-batches, ranks 1 and 2 reach 5 passes (rank 1: F0.0 F4.1 F1.0 F5.1
// F2.0), ranks 0 and 3 reach 4.
TEST_CASE("DualPipe holds both stage copies and pp + 1 passes", "[exec][memory]") {
  const ModelShape m = testing::tiny_moe(8);
  ParallelConfig p;
  p.pp = 4;
  p.dp = 2;
  p.ep = 2;
  TrainingWorkload w;
  w.seq_len = 1024;
  w.global_batch = 16;  // 8 micro-batches per replica
  ParallelConfig dual = p;
  dual.moe_a2a_overlap = MoeA2aOverlap::kDualPipe;
  for (int r = 0; r < 4; ++r) {
    const LocalParams a = local_params(m, p, r), b = local_params(m, p, 3 - r);
    const LocalParams both = local_params(m, dual, r);
    CHECK(both.dense == Approx(a.dense + b.dense));
    CHECK(both.experts == Approx(a.experts + b.experts));
  }
  const MemoryEstimate one = estimate_memory(m, p, w, {2048, 2048}, 80e9, 0);
  const MemoryEstimate two = estimate_memory(m, dual, w, {2048, 2048}, 80e9, 0);
  const int expected_passes[] = {4, 5, 5, 4};
  for (int r = 0; r < 4; ++r) {
    INFO("rank " << r);
    CHECK(two.per_stage[r].inflight_microbatches == expected_passes[r]);
    // Uniform stages: 2x one stage's weights.
    CHECK(two.per_stage[r].weights_bytes == Approx(2 * one.per_stage[1].weights_bytes));
  }
}

// Context parallelism: every saved tensor is per token of the micro-batch's
// seq_len / cp tokens on a rank, so cp = 2 halves the hand case's activations,
// routed copies (the routing plan gives each EP rank half the tokens) and
// logits; on top, while a layer's attention runs, Transformer Engine's ring
// holds the received K/V blocks, the per-step outputs and the FP32 output.
TEST_CASE("cp = 2 halves activation memory", "[exec][memory][cp]") {
  const HandCase one;
  HandCase two;
  two.parallel.cp = 2;
  two.routed = {100, 128};  // half the copies per GPU
  const MemoryEstimate a = one.estimate(), b = two.estimate();
  // The ring's buffers for 64 tokens, 4 heads of 128 per GPU (MHA): one
  // received K/V block, 2 x 4 x 128 x 2 bytes = 2048 per token; two BF16
  // partial outputs, 2 x 512 x 2 = 2048; the FP32 output, 512 x 4 = 2048.
  const double ring = 64 * (2048 + 2048 + 2048);
  CHECK(cp_ring_buffer_bytes(two.model, two.parallel, two.workload) == ring);
  CHECK(cp_ring_buffer_bytes(one.model, one.parallel, one.workload) == 0);
  // Stage 0: 2 passes of 64 tokens: 2 x (8258 x 64 + 64 x 8) = 1,058,048,
  // half of the hand case's 2,116,096.
  CHECK(a.per_stage[0].activations_bytes == 2116096);
  CHECK(b.per_stage[0].activations_bytes == 2116096 / 2 + ring);
  CHECK(b.per_stage[0].routed_tokens_bytes == a.per_stage[0].routed_tokens_bytes / 2);
  // Stage 1 peaks while the ring runs (393,216), not while the loss holds
  // its (halved) logits, 128 / 2 x 500 x 6 = 192,000: the two never coincide.
  CHECK(a.per_stage[1].logits_bytes == 384000);
  CHECK(b.per_stage[1].activations_bytes == 1319168 / 2 + ring);
  CHECK(b.per_stage[1].logits_bytes == 0);
  // Dense optimizer states shard over dp x cp = 2 ranks; experts over the
  // expert-data-parallel group, dp x tp x cp / (ep x etp) = 2 too.
  CHECK(b.per_stage[0].optimizer_bytes == a.per_stage[0].optimizer_bytes / 2);
  CHECK(b.per_stage[0].weights_bytes == a.per_stage[0].weights_bytes);
}

// Activation offload: the listed modules' tensors of every pass held leave
// the GPU, but one layer's (in flight out, or reloaded for backward).
// core_attn offloads Q, K, V and O (3072 + 1024 = 4096 bytes per token in the
// hand case); attn_proj shares O (no more bytes); expert_fc1 fc1's input
// (2048 per routed copy).
TEST_CASE("offloaded activations leave the GPU", "[exec][memory][offload]") {
  HandCase hc;
  const MemoryEstimate kept = hc.estimate();
  hc.parallel.offload_modules = (1u << static_cast<int>(OffloadModule::kCoreAttn)) |
                                (1u << static_cast<int>(OffloadModule::kAttnProj)) |
                                (1u << static_cast<int>(OffloadModule::kExpertFc1));
  const LayerSavedBytes layer = layer_saved_bytes(hc.model, hc.parallel, hw::DType::kBf16, 0);
  CHECK(layer.per_token == 8258);  // still saved, partly on the host
  CHECK(layer.offloaded_attention_per_token == 4096);
  CHECK(layer.offloaded_mlp_per_token == 0);
  CHECK(layer.offloaded_per_routed_copy == 2048);
  const MemoryEstimate off = hc.estimate();
  // Stage 0 holds 2 passes of layer 0: 2 x 4096 x 128 offloaded, one layer's
  // back on the GPU; routed: (200 + 256) copies x 2048 offloaded, the busiest
  // layer's 256 copies back.
  CHECK(off.per_stage[0].activations_bytes ==
        kept.per_stage[0].activations_bytes - 2 * 4096 * 128 + 4096 * 128);
  CHECK(off.per_stage[0].routed_tokens_bytes ==
        kept.per_stage[0].routed_tokens_bytes - (200 + 256) * 2048 + 256 * 2048);
  // Host memory holds both passes' offloaded tensors: 4096 x 128 per pass and
  // the mean GPU's 200 routed copies x 2048 (the hot layer is one of many).
  CHECK(kept.per_stage[0].host_offload_bytes == 0);
  CHECK_FALSE(kept.offloads_activations);
  CHECK(off.offloads_activations);
  CHECK(off.per_stage[0].host_offload_bytes == 2 * (4096 * 128 + 200 * 2048));
  CHECK(off.host_offload_peak_bytes >= off.per_stage[0].host_offload_bytes);
  // A node's host memory bounds it: past the GPU's share, the layout does
  // not fit, though the GPU's memory would hold it.
  MemoryEstimate tight = off;
  CHECK(tight.fits());  // unbounded by default
  tight.host_capacity_bytes = off.host_offload_peak_bytes - 1;
  CHECK(tight.fits_hbm());
  CHECK_FALSE(tight.fits_host());
  CHECK_FALSE(tight.fits());
  tight.host_capacity_bytes = off.host_offload_peak_bytes;
  CHECK(tight.fits());
  // mlp_norm: the block output (1024 per token) of an MoE layer, whose
  // pre-MLP norm is a separate module.
  hc.parallel.offload_modules = 1u << static_cast<int>(OffloadModule::kMlpNorm);
  CHECK(layer_saved_bytes(hc.model, hc.parallel, hw::DType::kBf16, 0).offloaded_mlp_per_token ==
        1024);
  // A tensor selective recompute frees is not offloaded: layernorm frees
  // nothing core_attn holds, moe_act frees fc2's input (never offloaded).
  hc.parallel.recompute = Recompute::kSelective;
  hc.parallel.offload_modules = 1u << static_cast<int>(OffloadModule::kMoeAct);
  // fc1's output 8192 + the FP32 probability 4.
  CHECK(layer_saved_bytes(hc.model, hc.parallel, hw::DType::kBf16, 0).offloaded_per_routed_copy ==
        8196);
}

// "selective_moe" (--recompute-modules layernorm moe): the MoE layer keeps
// nothing (its input, the pre-MLP norm's output, is layernorm's); the layer
// recomputed in backward holds its MoE tensors (pre-MLP norm output 1024,
// router scores 16, permute map 34 per token) and its routed copies (14340
// each, the busiest GPU's 256) for the moment.
TEST_CASE("selective_moe recomputes the whole MoE layer", "[exec][memory]") {
  HandCase hc;
  hc.parallel.recompute = Recompute::kSelectiveMoe;
  const LayerSavedBytes b = layer_saved_bytes(hc.model, hc.parallel, hw::DType::kBf16, 0);
  CHECK(b.per_token == 8258 - 1024 - 16 - 34);
  CHECK(b.per_routed_copy == 0);
  CHECK(b.all_per_routed_copy == 14340);
  const MemoryEstimate est = hc.estimate();
  CHECK(est.per_stage[0].activations_bytes == 2 * (7184 * 128 + 128 * 8) + (1024 + 16 + 34) * 128);
  CHECK(est.per_stage[0].routed_tokens_bytes == 256 * 14340);
}

TEST_CASE("capacity decides fits()", "[exec][memory]") {
  const HandCase hc;
  const MemoryEstimate est = hc.estimate();
  CHECK(est.fits());
  CHECK_FALSE(
      estimate_memory(hc.model, hc.parallel, hc.workload, hc.routed, est.peak_bytes - 1, 0).fits());
  CHECK(estimate_memory(hc.model, hc.parallel, hc.workload, hc.routed, est.peak_bytes, 0).fits());
}

TEST_CASE("GPU presets hold the HBM the device exposes, with its source", "[exec][memory]") {
  constexpr double kMib = 1024.0 * 1024.0;
  // Totals nvidia-smi (rocminfo for MI300X) reports; each preset's
  // sources.hbm_mib names where the figure was published.
  const std::pair<const char*, double> exposed_mib[] = {
      {"h100-sxm", 81559},      {"h800", 81559},  {"h200", 143771},
      {"a100-sxm-80gb", 81920}, {"b200", 183359}, {"mi300x", 196592}};
  for (const auto& [name, mib] : exposed_mib) {
    INFO(name);
    const hw::GpuSpec gpu = hw::resolve_gpu(Json(name), "cluster.gpu");
    CHECK(gpu.hbm_bytes == mib * kMib);
    CHECK(gpu.sources.count("hbm_mib") == 1);
  }
  // SMs (CUs), what communication kernels take from compute.
  const std::pair<const char*, int> sms[] = {{"h100-sxm", 132}, {"h800", 132},
                                             {"h200", 132},     {"a100-sxm-80gb", 108},
                                             {"b200", 148},     {"mi300x", 304}};
  for (const auto& [name, count] : sms) {
    INFO(name);
    const hw::GpuSpec gpu = hw::resolve_gpu(Json(name), "cluster.gpu");
    CHECK(gpu.sms == count);
    CHECK(gpu.sources.count("sms") == 1);
  }
  // An "80 GB" H100 exposes 79.6 GiB, not 80e9 bytes (74.5 GiB).
  CHECK(hw::resolve_gpu(Json("h100-sxm"), "gpu").hbm_bytes / (kMib * 1024) == Approx(79.647));
  // Every preset has a capacity source, so a new preset cannot skip it.
  for (const std::string& name : hw::preset_names("gpu")) {
    INFO(name);
    CHECK(hw::resolve_gpu(Json(name), "gpu").sources.count("hbm_mib") == 1);
  }
  // The old decimal-GB field is refused with what to write instead.
  CHECK_THROWS_WITH(
      hw::resolve_gpu(Json::parse(R"({"preset": "h100-sxm", "hbm_gb": 94})"), "cluster.gpu"),
      Catch::Contains("cluster.gpu.hbm_gb") && Catch::Contains("hbm_mib"));
}

}  // namespace
}  // namespace moesim::exec
