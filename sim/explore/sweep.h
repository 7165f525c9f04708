#pragma once
// Parameter sweeps: a base scenario plus axes (dot-separated JSON paths into
// the scenario, each with a list of values), expanded as a product or zipped,
// and/or explicit points. Each point is run through scenario::run_training,
// or scenario::run_inference when the base is a serving scenario
// (workload.mode "inference"; every point must then be one); its report is
// written atomically under <out>/points/<hash>.json, keyed by a hash of the
// point's scenario, so an interrupted sweep resumes where it stopped (reports
// already there are reused). summary.csv and summary.jsonl are rebuilt in
// point order at the end, one axis column per path any point sets (a point
// that leaves a path alone shows its scenario's value there): training
// sweeps with reports::summary_rows' columns; serving sweeps with point,
// hash, <axes...>, status,
// requests.completed, duration_s, throughput.{requests_per_s,
// input_tokens_per_s, output_tokens_per_s, input_tokens_per_s_per_gpu,
// output_tokens_per_s_per_gpu}, latency.ttft.{p50_s,p99_s},
// latency.tpot.{p50_s,p99_s}, latency.itl.p99_s, latency.e2e.{p50_s,p99_s},
// goodput.{requests_per_s,requests_per_s_per_gpu,slo_attainment},
// kv_cache.peak_utilisation, batch.{mean,max}, preemptions,
// experts.max_over_mean_load, error, report (each named by its path in the
// inference report; empty where the report has no value: out_of_memory
// points, goodput without an SLO).

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "reports/json_output.h"
#include "sim/core/config.h"
#include "sim/core/progress.h"
#include "sim/explore/processes.h"

namespace moesim::explore {

struct SweepPoint {
  std::vector<std::pair<std::string, OrderedJson>> overrides;  // path -> value
  Json scenario;                                               // base with the overrides
  std::string hash;                                            // scenario_hash(scenario)
};

// Points a sweep may have unless the caller raises it (`--max-points`): each
// point keeps its scenario in memory (a few KB) and runs a simulation.
inline constexpr size_t kDefaultMaxSweepPoints = 10000;

// Reads and expands a sweep file; a string "base" is a scenario file path
// relative to the sweep file. Errors name the file and the field; a sweep of
// more than `max_points` points is refused before anything is expanded, and
// one whose points mix training and inference scenarios is refused.
std::vector<SweepPoint> load_sweep(const std::string& sweep_path,
                                   size_t max_points = kDefaultMaxSweepPoints);
// The same from a parsed document (`source` names it in errors, `base_dir`
// resolves a base given as a path).
std::vector<SweepPoint> expand_sweep(const OrderedJson& sweep, const std::string& source,
                                     const std::string& base_dir,
                                     size_t max_points = kDefaultMaxSweepPoints);

struct SweepOutcome {
  size_t points = 0, reused = 0, invalid = 0;
};

// Runs the points this process owns (point i: rank i mod size) on `jobs`
// threads, gathers every point's rendered report on rank 0, and there writes
// <out_dir>/points/<hash>.json, summary.csv and summary.jsonl.
SweepOutcome run_sweep(const std::vector<SweepPoint>& points, const std::string& out_dir, int jobs,
                       const Processes& processes, const ProgressFn& progress);

}  // namespace moesim::explore
