#pragma once
// An inference (serving) scenario: the same file as training, with
// "workload": {"mode": "inference"}, resolved into a typed, validated
// InferenceScenario.
//
//   { "model": ..., "cluster": ...,
//     "workload": {"mode": "inference", "dtype": "bf16" | "fp8"},
//     "parallel": {"tp": 1, "attention_dp": 32, "ep": 32, "instances": 1,
//                  "a2a_algo": "auto" | "direct" | "hierarchical" | "low_latency",
//                  "dispatch_dtype": "bf16" | "fp8", "a2a_comm_sms": 20}
//       or {"disaggregation": {"prefill": {"nodes": 4, "parallel": {...}},
//                              "decode": {"nodes": 9, "parallel": {...}}}},
//     "serving": {"max_batch_size": 256, "max_num_tokens": 8192,
//                 "chunked_prefill": 0, "kv_block_tokens": 64, "kv_dtype": "bf16",
//                 "preemption": "recompute" | "swap", "swap_space_gib": 4,
//                 "two_batch_overlap": false,
//                 "slo": {"ttft_ms": 2000, "tpot_ms": 50}},
//     "requests": (workloads/requests.h),
//     "routing": {...}, "gating": {...}, "options": {...} }
//
// An instance is tp x attention_dp GPUs: attention_dp replicas of tp GPUs run
// attention and the dense layers, the routed experts are expert-parallel over
// ep ranks of the same GPUs (SGLang --enable-dp-attention with DeepEP,
// TensorRT-LLM's attention DP). "instances" defaults to as many as fill the
// cluster (or the role's nodes). Every field is validated here with its JSON
// path; impossible layouts throw InvalidStrategy (strategy.h).

#include <cstdint>
#include <string>
#include <vector>

#include "hwmodels/cluster.h"
#include "sim/core/config.h"
#include "sim/exec/inference_costs.h"
#include "sim/exec/serving.h"
#include "sim/exec/step_inputs.h"
#include "sim/scenario/scenario.h"
#include "workloads/gating.h"
#include "workloads/model_config.h"
#include "workloads/requests.h"

namespace moesim::scenario {

// True when the document's workload.mode is "inference" (anything malformed
// is left for the resolver to report).
bool is_inference(const Json& doc);

// A group of identical instances of one role on its own nodes.
struct InstanceGroup {
  exec::InstanceRole role = exec::InstanceRole::kMixed;
  int first_node = 0, nodes = 0;
  int first_rank = 0;  // global rank of the group's first GPU
  int instances = 1;
  exec::InferenceParallel parallel;
  int first_gpu(int instance) const;  // global rank of an instance's first GPU
  // The node of each EP rank of an instance (rank e is its GPUs
  // [e etp, (e+1) etp), numbered from first_gpu).
  std::vector<int> ep_rank_nodes(const hw::ClusterSpec& cluster, int instance) const;
};

struct InferenceOptions {
  std::string compute_calibration = "auto";
  int routing_samples = 2;                       // routings drawn per iteration
  int64_t max_routings_per_iteration = 1 << 20;  // token copies generated per iteration
  double reserved_memory_bytes = 4.0 * (1ull << 30);
  uint64_t max_iterations = 20'000'000;
  uint64_t timeline_iterations = 20'000;
};

struct InferenceScenario {
  workloads::MoeModelConfig model;
  hw::ClusterSpec cluster;
  exec::ModelShape shape;
  hw::DType dtype = hw::DType::kBf16;     // GEMMs and linear weights
  hw::DType kv_dtype = hw::DType::kBf16;  // the KV cache
  std::vector<InstanceGroup> groups;      // one mixed group, or prefill then decode
  exec::ServingConfig serving;
  bool two_batch_overlap = false;
  workloads::RequestLoad requests;
  Json requests_spec;  // as given, for the report
  workloads::GatingConfig gating;
  RoutingSource routing;
  InferenceOptions options;

  bool disaggregated() const {
    return groups.size() > 1 || groups[0].role != exec::InstanceRole::kMixed;
  }
  int gpus() const;
};

InferenceScenario resolve_inference_scenario(const Json& doc);
Json inference_scenario_json(const InferenceScenario& scenario);

}  // namespace moesim::scenario
