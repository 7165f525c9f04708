#pragma once
// Predicted time of the reference MoE layer from a compute-cost model: the
// same steps MoeLayer::forward runs, each priced through ComputeCostModel, so
// `moesim validate kernel` compares the cost model (not a re-timing) against
// the measured kernel.

#include <cstdint>
#include <span>

#include "hwmodels/compute_cost.h"
#include "hwmodels/kernels/moe_layer.h"

namespace moesim::kern {

// Bytes each memory-bound step of the forward reads and writes (FP32). The
// calibration measures these steps with the same counts, so the bandwidth it
// reports is the one the predictor should divide by.
struct MoeStepBytes {
  double softmax_topk = 0, permute = 0, activation = 0, combine = 0, shared_activation = 0;
};
MoeStepBytes moe_step_bytes(const MoeShape& shape, int64_t kept_assignments);

// Seconds per step (fields as in MoeStepTimes) for the given per-expert loads
// (after capacity dropping).
MoeStepTimes predict_moe_layer(const hw::ComputeCostModel& model, const MoeShape& shape,
                               std::span<const int64_t> tokens_per_expert);

}  // namespace moesim::kern
