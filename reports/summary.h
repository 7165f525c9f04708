#pragma once
// One row per sweep point: the axis values and the report's key metrics,
// written as summary.csv and summary.jsonl (same columns, same order). Rows
// are read from each point's stored report (training_report.h's format), so
// that points computed earlier (a resumed sweep) or on other MPI ranks give
// the same row as points computed now.

#include <string>
#include <utility>
#include <vector>

#include "reports/json_output.h"

namespace moesim::reports {

struct SummaryPoint {
  size_t index = 0;
  std::string hash;
  std::vector<std::pair<std::string, OrderedJson>> axes;  // path -> value
  OrderedJson report;                                     // null when the point failed
  std::string error;                                      // why it failed (invalid strategy, ...)
  std::string report_file;
};

// Columns: point, hash, <axes...>, status, step_time_s, tokens_per_s,
// tokens_per_s_per_gpu, mfu, memory.peak_bytes, memory.fits,
// experts.max_over_mean_load, experts.drop_rate, bottleneck,
// breakdown.<category>..., error, report.
std::vector<OrderedJson> summary_rows(const std::vector<SummaryPoint>& points);
std::string summary_csv(const std::vector<OrderedJson>& rows);
std::string summary_jsonl(const std::vector<OrderedJson>& rows);

// Parses summary.csv back (for plotting): header + rows of strings.
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};
Table parse_csv(const std::string& text, const std::string& source);

}  // namespace moesim::reports
