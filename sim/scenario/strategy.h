#pragma once
// Reading and validating the scenario's "parallel" and "workload" sections,
// and checking a strategy against the model and the cluster. Impossible
// combinations throw InvalidStrategy, whose message says why and whose code
// names the rule (strategy search counts rejections by code).

#include <string>

#include "sim/core/config.h"
#include "sim/core/error.h"
#include "sim/exec/step_inputs.h"

namespace moesim::scenario {

using exec::ModelShape;
using exec::ParallelConfig;
using exec::TrainingWorkload;

class InvalidStrategy : public Error {
 public:
  InvalidStrategy(std::string code, const std::string& message)
      : Error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

ParallelConfig parse_parallel(ConfigObject section);
TrainingWorkload parse_workload(ConfigObject section);

// Throws InvalidStrategy (codes: gpu_count, tp_divides_heads, tp_divides_ffn,
// ep_divides_experts, expert_grid, sequence_parallel_required,
// tp_divides_tokens, batch_divisible, microbatch_count, pipeline_layers, pipeline_layout,
// interleave_microbatches; cp_divides_sequence, offload_activations,
// selective_moe_needs_experts; for moe_a2a_overlap: a2a_overlap_needs_ep,
// a2a_overlap_recompute, a2a_comm_sms, a2a_overlap_chunks,
// a2a_overlap_needs_vpp, dualpipe_stages, dualpipe_microbatches).
// `gpu_sms`: the GPU's SM (CU) count, 0 if unknown.
void check_strategy(const ModelShape& model, const ParallelConfig& parallel,
                    const TrainingWorkload& workload, int cluster_gpus, int gpu_sms = 0);

// The resolved sections as they appear in reports (every default filled in).
Json parallel_json(const ParallelConfig& parallel);
Json workload_json(const TrainingWorkload& workload);

}  // namespace moesim::scenario
