#pragma once
// The versioned JSON report of a training simulation (`moesim run`), and its
// short human summary: both only serialise a scenario::TrainingRun. Every
// field is documented in reports/SCHEMA.md; bump kReportSchemaVersion when a
// field changes meaning or disappears.

#include <string>

#include "reports/json_output.h"
#include "sim/scenario/run.h"

namespace moesim::reports {

inline constexpr const char* kReportSchemaVersion = "1.0";

OrderedJson training_report(const scenario::TrainingRun& run);

// A few lines for a terminal: step time, throughput, MFU, the largest
// breakdown categories, memory headroom, expert load, warnings.
std::string training_summary(const scenario::TrainingRun& run);

// The "experts" object of a report (training and inference alike).
OrderedJson experts_json(const scenario::ExpertStats& experts);

// Reports carry 9 significant digits: enough for any comparison, and short.
double round_sig(double x);

}  // namespace moesim::reports
