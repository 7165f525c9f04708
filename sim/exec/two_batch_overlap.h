#pragma once
// Two-batch overlap as SGLang runs it (python/sglang/srt/operations_strategy.py,
// operations.py execute_overlapped_operations; DeepSeek's inference system
// does the same): each micro-batch's forward is a list of stages cut at
// YieldOperation points; the host runs one stage of micro-batch A, then one
// of B, and so on, B starting `delta` stages after A. All compute goes to one
// GPU stream in that order; an all-to-all is launched by one stage
// (dispatch_a / combine_a) and waited for by a later one (dispatch_b /
// combine_b), so it is hidden exactly as far as the other micro-batch's
// stage in between lasts.
//
// Per MoE layer, the stages are
//   prefill (delta 0):
//     [shared(l-1), wait combine(l-1), attention(l), router(l), launch dispatch(l)]
//     [wait dispatch(l), experts(l), launch combine(l)]
//   decode (delta 2):
//     [attention projections(l)] [attention core(l), router(l)]
//     [launch dispatch(l), shared(l)]
//     [wait dispatch(l), experts(l), launch combine(l)] [wait combine(l)]
// (_compute_moe_deepseek_blog_prefill / _decode). Transfers of the two
// micro-batches share the network one after another (first launched, first
// done). Prefill's normal-mode kernels hold SMs: SGLang runs the whole
// overlapped forward with DeepGEMM confined to the SMs DeepEP leaves
// (_model_forward_tbo under configure_deep_gemm_num_sms(deep_gemm_num_sms =
// SMs - DeepEP's), two_batch_overlap.py), so every DeepGEMM kernel (the
// routed experts, and the block-FP8 linears: LayerCost's *_gemm parts) runs
// on fewer SMs throughout, and other compute runs slower while a transfer is
// in flight; decode's low-latency kernels hold none.

#include <span>

#include "sim/exec/inference_costs.h"

namespace moesim::exec {

enum class OverlapSchedule { kPrefill, kDecode };

struct OverlapSlowdown {
  double deep_gemm = 1;  // DeepGEMM kernels, always (prefill: on fewer SMs)
  double in_flight = 1;  // other compute while a transfer is in flight
};

// The iteration's time on the GPU stream with micro-batches `a` and `b` (per
// layer, as LayerCost gives them); waits count as exposed dispatch / combine.
// REQUIRES a.size() == b.size().
IterationCost two_batch_overlap(std::span<const LayerCost> a, std::span<const LayerCost> b,
                                OverlapSchedule schedule, const OverlapSlowdown& slowdown);

}  // namespace moesim::exec
