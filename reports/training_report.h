#pragma once
// The versioned JSON report of a training simulation (`moesim run`), and its
// short human summary. Every field is documented in reports/SCHEMA.md; bump
// kReportSchemaVersion when a field changes meaning or disappears.

#include <string>
#include <vector>

#include "reports/json_output.h"
#include "sim/exec/training_step.h"

namespace moesim::reports {

inline constexpr const char* kReportSchemaVersion = "1.0";

// Routing statistics per MoE layer, over everything the step routed.
struct LayerExpertStats {
  int layer = 0;
  std::vector<int64_t> load;  // token copies received per expert slot
  int64_t tokens_dropped = 0;
};

struct TrainingReportInput {
  OrderedJson resolved_scenario;
  const exec::TrainingStepSetup* setup = nullptr;
  const exec::TrainingResult* result = nullptr;  // null when the strategy does not fit
  exec::MemoryEstimate memory;
  std::vector<LayerExpertStats> experts;
  std::string network_model;  // "analytic" or "flow"
  std::vector<std::string> warnings;
};

OrderedJson training_report(const TrainingReportInput& in);

// A few lines for a terminal: step time, throughput, MFU, the largest
// breakdown categories, memory headroom, warnings.
std::string training_summary(const OrderedJson& report);

}  // namespace moesim::reports
