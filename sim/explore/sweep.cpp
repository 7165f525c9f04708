#include "sim/explore/sweep.h"

#include <algorithm>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>

#include "reports/inference_report.h"
#include "reports/summary.h"
#include "reports/training_report.h"
#include "sim/core/error.h"
#include "sim/core/file_io.h"
#include "sim/core/parallel_for.h"
#include "sim/explore/json_path.h"
#include "sim/scenario/inference.h"
#include "sim/scenario/inference_run.h"
#include "sim/scenario/run.h"

namespace moesim::explore {
namespace {

OrderedJson parse_ordered(const std::string& text, const std::string& source) {
  check_json_text(text, source);  // depth, duplicate keys, syntax: as every JSON input
  try {
    return OrderedJson::parse(text);
  } catch (const OrderedJson::parse_error& e) {
    throw Error(fmt::format("{}: byte {}: invalid JSON: {}", source, e.byte, e.what()));
  }
}

// The axes and explicit points of a sweep, without their scenarios.
std::vector<SweepPoint> expand_points(const OrderedJson& sweep, const std::string& source,
                                      size_t max_points) {
  std::vector<SweepPoint> points;
  for (auto it = sweep.begin(); it != sweep.end(); ++it) {
    if (it.key() != "base" && it.key() != "axes" && it.key() != "mode" && it.key() != "points") {
      throw Error(
          fmt::format("{}: {}: unknown field (base, axes, mode, points)", source, it.key()));
    }
  }
  const OrderedJson mode_value = sweep.value("mode", OrderedJson("product"));
  const std::string mode = mode_value.is_string() ? mode_value.get<std::string>() : "";
  if (mode != "product" && mode != "zip") {
    throw Error(fmt::format("{}: mode: expected \"product\" or \"zip\", got {}", source,
                            mode_value.dump()));
  }
  std::vector<std::pair<std::string, std::vector<OrderedJson>>> axes;
  if (sweep.contains("axes")) {
    if (!sweep["axes"].is_object())
      throw Error(fmt::format("{}: axes: expected an object", source));
    for (const auto& [path, values] : sweep["axes"].items()) {
      if (!values.is_array() || values.empty()) {
        throw Error(fmt::format("{}: axes.{}: expected a non-empty array of values", source, path));
      }
      axes.push_back({path, std::vector<OrderedJson>(values.begin(), values.end())});
    }
  }
  // Count before expanding (a product of axes grows fast), saturating just
  // above the limit.
  size_t count =
      sweep.contains("points") && sweep["points"].is_array() ? sweep["points"].size() : 0;
  if (!axes.empty()) {
    size_t grid = mode == "zip" ? axes[0].second.size() : 1;
    if (mode != "zip") {
      for (const auto& a : axes) {
        grid = a.second.size() > max_points / grid ? max_points + 1 : grid * a.second.size();
      }
    }
    count += grid;
  }
  if (count > max_points) {
    throw Error(
        fmt::format("{}: the sweep has more than {} points (the axes' product{}); raise "
                    "--max-points to run it",
                    source, max_points, sweep.contains("points") ? " plus points" : ""));
  }
  if (!axes.empty()) {
    if (mode == "zip") {
      const size_t n = axes[0].second.size();
      for (const auto& a : axes) {
        if (a.second.size() != n) {
          throw Error(fmt::format("{}: axes.{}: zip mode needs equal lengths ({} vs {})", source,
                                  a.first, a.second.size(), n));
        }
      }
      for (size_t i = 0; i < n; ++i) {
        SweepPoint p;
        for (const auto& a : axes) p.overrides.push_back({a.first, a.second[i]});
        points.push_back(p);
      }
    } else {
      std::vector<size_t> idx(axes.size(), 0);
      for (;;) {
        SweepPoint p;
        for (size_t a = 0; a < axes.size(); ++a)
          p.overrides.push_back({axes[a].first, axes[a].second[idx[a]]});
        points.push_back(p);
        size_t a = axes.size();
        while (a > 0) {
          --a;
          if (++idx[a] < axes[a].second.size()) break;
          idx[a] = 0;
          if (a == 0) return points;
        }
        if (axes.size() == 0) break;
      }
    }
  }
  if (sweep.contains("points")) {
    if (!sweep["points"].is_array())
      throw Error(fmt::format("{}: points: expected an array", source));
    for (size_t i = 0; i < sweep["points"].size(); ++i) {
      const auto& o = sweep["points"][i];
      if (!o.is_object()) throw Error(fmt::format("{}: points[{}]: expected an object", source, i));
      SweepPoint p;
      for (const auto& [k, v] : o.items()) p.overrides.push_back({k, v});
      points.push_back(p);
    }
  }
  if (points.empty()) throw Error(fmt::format("{}: no points (give axes or points)", source));
  return points;
}

// A point's report: reused from an earlier run if a readable one is there
// ('R' + text), else simulated now ('N' + text; invalid scenarios give a
// report with status "invalid").
std::string point_report(const SweepPoint& point, const std::string& path) {
  if (std::filesystem::exists(path)) {
    try {
      const std::string text = read_file(path);
      if (!parse_ordered(text, path).is_object()) throw Error("not a report");
      return 'R' + text;
    } catch (const std::exception&) {
      // unreadable: recompute
    }
  }
  OrderedJson report;
  try {
    report = scenario::is_inference(point.scenario)
                 ? reports::inference_report(scenario::run_inference(point.scenario))
                 : reports::training_report(scenario::run_training(point.scenario));
  } catch (const Error& e) {
    report = OrderedJson{{"status", "invalid"}, {"error", e.what()}};
  }
  return 'N' + render_json(report);
}

// Serving points' summary columns after point, hash, the axes and status:
// each is the dotted path of the value in the inference report
// (reports/inference_report.h), so a column means what the report's field
// means.
constexpr const char* kInferenceSummaryColumns[] = {
    "requests.completed",
    "duration_s",
    "throughput.requests_per_s",
    "throughput.input_tokens_per_s",
    "throughput.output_tokens_per_s",
    "throughput.input_tokens_per_s_per_gpu",
    "throughput.output_tokens_per_s_per_gpu",
    "latency.ttft.p50_s",
    "latency.ttft.p99_s",
    "latency.tpot.p50_s",
    "latency.tpot.p99_s",
    "latency.itl.p99_s",
    "latency.e2e.p50_s",
    "latency.e2e.p99_s",
    "goodput.requests_per_s",
    "goodput.requests_per_s_per_gpu",
    "goodput.slo_attainment",
    "kv_cache.peak_utilisation",
    "batch.mean",
    "batch.max",
    "preemptions",
    "experts.max_over_mean_load",
};

// The value at a dotted path of a report; null where any step is missing
// (an out_of_memory report, a scenario without an SLO).
OrderedJson at_path(const OrderedJson& report, std::string_view path) {
  const OrderedJson* node = &report;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    const std::string key(path.substr(0, dot));
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &(*node)[key];
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  return *node;
}

// Rows of a serving sweep, in the layout of reports::summary_rows.
std::vector<OrderedJson> inference_summary_rows(const std::vector<reports::SummaryPoint>& points) {
  std::vector<OrderedJson> rows;
  for (const reports::SummaryPoint& p : points) {
    OrderedJson r;
    r["point"] = p.index;
    r["hash"] = p.hash;
    for (const auto& [k, v] : p.axes) r[k] = v;
    r["status"] = p.report.is_null() ? OrderedJson("invalid") : p.report["status"];
    for (const char* column : kInferenceSummaryColumns) r[column] = at_path(p.report, column);
    r["error"] = p.error.empty() ? OrderedJson(nullptr) : OrderedJson(p.error);
    r["report"] = p.report_file;
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace

std::vector<SweepPoint> expand_sweep(const OrderedJson& sweep, const std::string& source,
                                     const std::string& base_dir, size_t max_points) {
  if (!sweep.is_object() || !sweep.contains("base")) {
    throw Error(fmt::format("{}: base: required (a scenario object or a path)", source));
  }
  Json base;
  if (!sweep["base"].is_string() && !sweep["base"].is_object()) {
    throw Error(fmt::format("{}: base: expected a scenario object or a path, got {}", source,
                            sweep["base"].type_name()));
  }
  if (sweep["base"].is_string()) {
    base = load_json_file(
        (std::filesystem::path(base_dir) / sweep["base"].get<std::string>()).string());
  } else {
    base = Json::parse(sweep["base"].dump());
  }
  std::vector<SweepPoint> points = expand_points(sweep, source, max_points);
  const bool inference = scenario::is_inference(base);
  for (size_t i = 0; i < points.size(); ++i) {
    points[i].scenario = base;
    for (const auto& [path, value] : points[i].overrides) {
      set_json_path(points[i].scenario, path, Json::parse(value.dump()),
                    fmt::format("{}: point {}", source, i));
    }
    // One kind of report per sweep, so that summary.csv has one set of columns.
    if (scenario::is_inference(points[i].scenario) != inference) {
      throw Error(fmt::format(
          "{}: point {}: workload.mode makes it {} scenario while the base is {} one; a "
          "sweep's points are all training or all inference",
          source, i, inference ? "a training" : "an inference",
          inference ? "an inference" : "a training"));
    }
    points[i].hash = scenario_hash(points[i].scenario);
  }
  return points;
}

std::vector<SweepPoint> load_sweep(const std::string& sweep_path, size_t max_points) {
  return expand_sweep(parse_ordered(read_file(sweep_path), sweep_path), sweep_path,
                      std::filesystem::path(sweep_path).parent_path().string(), max_points);
}

namespace {

// Creates <out>/points and drops the temporary files of a killed run (never
// renamed into place).
void prepare_points_dir(const std::filesystem::path& points_dir, const std::string& out_dir) {
  try {
    std::filesystem::create_directories(points_dir);
    for (const auto& e : std::filesystem::directory_iterator(points_dir)) {
      if (e.path().filename().string().find(".json.tmp.") != std::string::npos) {
        std::filesystem::remove(e.path());
      }
    }
  } catch (const std::filesystem::filesystem_error& e) {
    throw Error(
        fmt::format("--output: cannot use '{}' for results: {}", out_dir, e.code().message()));
  }
}

// The axis columns of every summary row: each path some point sets, in the
// order the points first set it. A point that leaves a path alone shows its
// scenario's value there (the base's, null where the base has none), so
// explicit points that set different fields still give every row the same
// columns.
std::vector<std::vector<std::pair<std::string, OrderedJson>>> axis_values(
    const std::vector<SweepPoint>& points) {
  std::vector<std::string> paths;
  for (const SweepPoint& p : points) {
    for (const auto& [path, value] : p.overrides) {
      if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(path);
    }
  }
  std::vector<std::vector<std::pair<std::string, OrderedJson>>> out(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    for (const std::string& path : paths) {
      const auto& set = points[i].overrides;
      const auto own =
          std::find_if(set.begin(), set.end(), [&](const auto& o) { return o.first == path; });
      out[i].push_back(
          {path, own != set.end()
                     ? own->second
                     : OrderedJson::parse(get_json_path(points[i].scenario, path).dump())});
    }
  }
  return out;
}

}  // namespace

SweepOutcome run_sweep(const std::vector<SweepPoint>& points, const std::string& out_dir, int jobs,
                       const Processes& processes, const ProgressFn& progress) {
  const std::filesystem::path points_dir = std::filesystem::path(out_dir) / "points";
  // Rank 0 alone prepares the folder: another rank clearing temporaries
  // would delete the ones rank 0 is about to rename into place.
  if (processes.rank == 0) prepare_points_dir(points_dir, out_dir);
  auto report_path = [&](size_t i) { return (points_dir / (points[i].hash + ".json")).string(); };
  // Each process computes the points it owns on its threads; rank 0 writes.
  std::vector<size_t> mine;
  for (size_t i = 0; i < points.size(); ++i) {
    if (processes.owns(i)) mine.push_back(i);
  }
  std::vector<std::string> results(points.size());
  parallel_for_with_progress(mine.size(), jobs, progress, [&](size_t k) {
    const size_t i = mine[k];
    results[i] = point_report(points[i], report_path(i));
    if (processes.rank == 0 && results[i][0] == 'N')
      write_file_atomic(report_path(i), results[i].substr(1));
  });
  if (processes.gather) results = processes.gather(std::move(results));
  SweepOutcome outcome;
  outcome.points = points.size();
  if (processes.rank != 0) return outcome;
  const auto axes = axis_values(points);
  std::vector<reports::SummaryPoint> summary(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    if (results[i][0] == 'R') {
      ++outcome.reused;
    } else if (static_cast<int>(i % processes.size) != 0) {
      write_file_atomic(report_path(i), results[i].substr(1));
    }
    reports::SummaryPoint& p = summary[i];
    p.index = i;
    p.hash = points[i].hash;
    p.axes = axes[i];
    p.report_file = fmt::format("points/{}.json", points[i].hash);
    p.report = OrderedJson::parse(results[i].substr(1));
    if (p.report.value("status", "") == "invalid") {
      p.error = p.report["error"].get<std::string>();
      p.report = nullptr;
      ++outcome.invalid;
    }
  }
  const bool inference = !points.empty() && scenario::is_inference(points[0].scenario);
  const auto rows = inference ? inference_summary_rows(summary) : reports::summary_rows(summary);
  write_file_atomic((std::filesystem::path(out_dir) / "summary.csv").string(),
                    reports::summary_csv(rows));
  write_file_atomic((std::filesystem::path(out_dir) / "summary.jsonl").string(),
                    reports::summary_jsonl(rows));
  return outcome;
}

}  // namespace moesim::explore
