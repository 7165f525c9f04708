#pragma once
// Serving predicted against SGLang's large-scale expert-parallel deployment
// of DeepSeek-V3 on 12 x 8 H100 (lmsys blog 2025-05-05 "large-scale-ep";
// shared/reference/measurements.md): prefill EP32 on 4 nodes at 1K / 2K / 4K
// prompts and with perfectly balanced experts, decode EP72 on 9 nodes at 256
// requests per GPU and 2,000-token contexts, and the two-batch-overlap
// ablation in decode at 256 and 32 tokens per GPU.
//
// Every row runs examples/deepseek-v3-h100-prefill-ep32.json or
// examples/deepseek-v3-h100-decode-ep72.json with the row's prompt length,
// batch or overlap setting; the decode rows on the pure-RDMA low-latency
// kernels the blog's DeepEP had (cluster.node.low_latency_nvlink false).
// Nothing is calibrated on these rows: all are predictions. The routing is
// the examples' ("grouped:0.5:0.3:0.2" with 32 EPLB replicas; "uniform" for
// the balanced row). The blog's routing data is not published, but its
// GPU balancedness is (eplb-balancedness.png: with and without EPLB, 8 to 72
// GPUs): the generator's three numbers were chosen on those eight points
// (a grid over S, G and V, the best fit; the table `balancedness` shows all
// eight, every one a calibration row). The throughput rows that use the
// routing stay predictions: the chart constrains the routing, not the time.
//
// Target (issue 16): every row within 20%, throughput falling with prompt
// length, and the sign of both overlap effects right.
//
// Reference rows, not part of the target:
//  - the blog's table also quotes DeepSeek's own profile of the prefill load
//    (deepseek-ai/profile-data: EP32 on H800, 4K prompts, 16,384 tokens per
//    GPU, "absolutely balanced" routing, 24 SMs for communication in its
//    overlap figure), 62,713 input tokens/s per node; it runs the prefill
//    example on hgx-h800 with uniform routing and a2a_comm_sms 24;
//  - the blog's prefill two-batch-overlap ablation (its chart tbo-overall.png):
//    input tokens/s per node without the overlap, and the overlap's gain, at
//    8K / 4K / 2K tokens per GPU with 4K / 2K / 1K prompts. The rows without
//    overlap time the same kernels with nothing hidden, so they separate the
//    kernels' costs from the overlap model's;
//  - the blog's EPLB ablation on prefill ("1.49x", eplb-throughput.png): the
//    4K row with and without the 32 replicas (the blog does not say how its
//    run without EPLB placed experts);
//  - layers part by part: the DeepSeek profile row's, the 4K row's and the
//    balanced row's against profile-prefill.png, the first prefill row
//    without overlap against SGLang's own profile of it
//    (tbo-breakdown-prefill.png), and decode without overlap at 256 requests
//    per GPU against SGLang's profile of it (tbo-breakdown-decode.png).

#include <functional>
#include <string>
#include <vector>

#include "sim/core/config.h"
#include "workloads/model_config.h"

namespace moesim::explore {

struct ServingComparison {
  std::string row;     // "prefill EP32, 4K prompts", ...
  std::string metric;  // "input tokens/s per node", "two-batch overlap throughput change"
  double published = 0, predicted = 0;
  double error =
      0;  // throughput rows: predicted / published - 1; ablation rows: predicted - published
  // A row outside issue 16's target, shown for context (see above).
  bool reference = false;
};

// One part of a layer against the blog's kernel breakdowns, ms per layer:
// prefill at 16,384 tokens per GPU (both micro-batches, or an 8,192-token
// batch scaled to that), moesim's part alone, from its charts
// profile-prefill.png (DeepSeek's and SGLang's profiles, SGLang's unit
// tests) and tbo-breakdown-prefill.png (SGLang without two-batch overlap);
// decode at 256 requests per GPU, moesim's part of its run's iterations,
// from tbo-breakdown-decode.png.
struct LayerPartComparison {
  std::string part;
  double profile_ms = 0;    // the served system's kernels, as profiled
  double unit_test_ms = 0;  // SGLang's unit test (0: none shown)
  double predicted_ms = 0;
};

// GPU balancedness (routing_balancedness) against the blog's simulation on
// its recorded DeepSeek-V3 routing (eplb-balancedness.png: 8, 16, 32 and 64
// GPUs without EPLB; 8, 16, 32 and 72 with 32 redundant experts). Every row
// calibrates the examples' routing (see above).
struct BalanceComparison {
  int gpus = 0;
  bool eplb = false;
  double published = 0, predicted = 0;
};

struct ServingValidation {
  std::string source;
  std::string routing;  // the examples' routing generator
  std::vector<BalanceComparison> balancedness;
  std::vector<ServingComparison> rows;
  // The DeepSeek profile row's layer, part by part (reference, outside the target).
  std::vector<LayerPartComparison> prefill_layer;
  // The 4K row's and the balanced row's layers, part by part against SGLang's
  // own profile of them (profile-prefill.png; reference).
  std::vector<LayerPartComparison> sglang_layer, sglang_balanced_layer;
  // The first prefill row without overlap (8K tokens per GPU, 4K prompts),
  // part by part against SGLang's own profile of it (reference).
  std::vector<LayerPartComparison> no_overlap_layer;
  // Decode without overlap at 256 requests per GPU, part by part against
  // SGLang's profile of it (tbo-breakdown-decode.png; reference).
  std::vector<LayerPartComparison> decode_layer;
  double max_abs_throughput_error = 0;  // over the throughput rows
  bool within_20_percent = false;
  bool prompt_length_trend_right = false;  // 1K > 2K > 4K input tokens/s
  bool overlap_signs_right = false;        // + at 256 tokens per GPU, - at 32
};

// Balancedness as SGLang's blog defines it (its chart eplb-balancedness.png):
// per MoE layer and batch, the mean over the maximum of the token copies the
// GPUs' experts receive; here averaged over `model`'s MoE layers and
// `batches` batches of `tokens_per_gpu` tokens on each of `gpus` GPUs (8 per
// node), routed by `generator` (a routing generator spec) through the
// model's router with `redundant` EPLB replicas placed from the generator's
// long-run popularity (0: one slot per expert, in order).
// REQUIRES: (experts + redundant) % gpus == 0.
double routing_balancedness(const workloads::MoeModelConfig& model, const std::string& generator,
                            int gpus, int redundant, int64_t tokens_per_gpu, int batches,
                            uint64_t seed);

// `example(file)` returns one of examples/*.json; independent figures are
// computed `jobs` at a time, with the same result for any `jobs`.
ServingValidation validate_serving(const std::function<Json(const std::string&)>& example,
                                   int jobs);

}  // namespace moesim::explore
