// `moesim sweep sweep.json -o results/`: a base scenario plus axes (JSON paths
// into the scenario), run point by point on a thread pool. Every point's
// report is written atomically under results/points/<hash>.json, keyed by a
// hash of the point's scenario, so an interrupted sweep resumes where it
// stopped; summary.csv and summary.jsonl are rebuilt in point order at the end.

#include <atomic>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "reports/summary.h"
#include "sim/app/commands.h"
#include "sim/app/explore/distributed.h"
#include "sim/app/explore/json_path.h"
#include "sim/app/explore/point_runner.h"
#include "sim/app/scenario_runner.h"
#include "sim/core/file_io.h"

namespace moesim::cli {
namespace {

struct Point {
  std::vector<std::pair<std::string, OrderedJson>> overrides;
};

OrderedJson parse_ordered(const std::string& text, const std::string& source) {
  try {
    return OrderedJson::parse(text);
  } catch (const OrderedJson::parse_error& e) {
    throw Error(fmt::format("{}: byte {}: invalid JSON: {}", source, e.byte, e.what()));
  }
}

std::vector<Point> expand(const OrderedJson& sweep, const std::string& source) {
  std::vector<Point> points;
  for (auto it = sweep.begin(); it != sweep.end(); ++it) {
    if (it.key() != "base" && it.key() != "axes" && it.key() != "mode" && it.key() != "points") {
      throw Error(
          fmt::format("{}: {}: unknown field (base, axes, mode, points)", source, it.key()));
    }
  }
  const std::string mode = sweep.value("mode", std::string("product"));
  if (mode != "product" && mode != "zip") {
    throw Error(fmt::format("{}: mode: expected \"product\" or \"zip\", got \"{}\"", source, mode));
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
        Point p;
        for (const auto& a : axes) p.overrides.push_back({a.first, a.second[i]});
        points.push_back(p);
      }
    } else {
      std::vector<size_t> idx(axes.size(), 0);
      for (;;) {
        Point p;
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
      Point p;
      for (const auto& [k, v] : o.items()) p.overrides.push_back({k, v});
      points.push_back(p);
    }
  }
  if (points.empty()) throw Error(fmt::format("{}: no points (give axes or points)", source));
  return points;
}

}  // namespace

int sweep_main(const Args& args) {
  po::options_description options("sweep options");
  std::string file, out_dir;
  int jobs = 2;
  options.add_options()("sweep", po::value(&file), "sweep file")("output,o", po::value(&out_dir),
                                                                 "results directory")(
      "jobs,j", po::value(&jobs), "points simulated in parallel (default 2)");
  po::positional_options_description positional;
  positional.add("sweep", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm, "moesim sweep sweep.json -o results/ [-j N]")) {
    return 0;
  }
  if (file.empty()) throw Error("sweep: missing sweep file");
  if (out_dir.empty()) throw Error("--output: required (results directory)");
  if (jobs < 1 || jobs > 256) throw Error("--jobs: expected an integer in [1, 256]");
  const OrderedJson sweep = parse_ordered(read_file(file), file);
  if (!sweep.is_object() || !sweep.contains("base")) {
    throw Error(fmt::format("{}: base: required (a scenario object or a path)", file));
  }
  Json base;
  if (sweep["base"].is_string()) {
    const std::filesystem::path p =
        std::filesystem::path(file).parent_path() / sweep["base"].get<std::string>();
    base = load_json_file(p.string());
  } else {
    base = Json::parse(sweep["base"].dump());
  }
  const std::vector<Point> points = expand(sweep, file);
  std::vector<reports::SummaryPoint> summary(points.size());
  std::vector<Json> scenarios(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    scenarios[i] = base;
    for (const auto& [path, value] : points[i].overrides) {
      set_json_path(scenarios[i], path, Json::parse(value.dump()),
                    fmt::format("{}: point {}", file, i));
    }
    summary[i].index = i;
    summary[i].hash = scenario_hash(scenarios[i]);
    summary[i].axes = points[i].overrides;
    summary[i].report_file = fmt::format("points/{}.json", summary[i].hash);
  }
  const std::filesystem::path points_dir = std::filesystem::path(out_dir) / "points";
  std::filesystem::create_directories(points_dir);
  // Temporary files of a killed run (never renamed into place) are dropped.
  for (const auto& e : std::filesystem::directory_iterator(points_dir)) {
    if (e.path().filename().string().find(".json.tmp.") != std::string::npos) {
      std::filesystem::remove(e.path());
    }
  }
  // Each process (MPI rank) computes the points it owns on its threads; the
  // rendered reports are gathered on rank 0, which writes them and the
  // summary. A leading 'R' marks a report reused from an earlier run.
  const Distribution dist = process_distribution();
  std::vector<size_t> mine;
  for (size_t i = 0; i < points.size(); ++i) {
    if (dist.owns(i)) mine.push_back(i);
  }
  std::vector<std::string> results(points.size());
  const std::string what = dist.size > 1 ? fmt::format("sweep rank {}", dist.rank) : "sweep";
  run_points(mine.size(), jobs, what, [&](size_t k) {
    const size_t i = mine[k];
    const std::string path = (std::filesystem::path(out_dir) / summary[i].report_file).string();
    if (std::filesystem::exists(path)) {
      try {
        const std::string text = read_file(path);
        if (!OrderedJson::parse(text).is_object()) throw Error("not a report");
        results[i] = 'R';
        results[i] += text;
        return;
      } catch (const std::exception&) {
        // unreadable: recompute
      }
    }
    OrderedJson report;
    try {
      report = run_scenario_report(scenarios[i]);
    } catch (const Error& e) {
      report = OrderedJson{{"status", "invalid"}, {"error", e.what()}};
    }
    results[i] = 'N';
    results[i] += render_json(report);
    if (dist.rank == 0) write_file_atomic(path, results[i].substr(1));
  });
  results = gather_to_root(dist, std::move(results));
  if (dist.rank != 0) return 0;
  int reused = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    const std::string path = (std::filesystem::path(out_dir) / summary[i].report_file).string();
    if (results[i][0] == 'R') {
      ++reused;
    } else if (!dist.owns(i)) {
      write_file_atomic(path, results[i].substr(1));
    }
    summary[i].report = OrderedJson::parse(results[i].substr(1));
    if (summary[i].report.value("status", "") == "invalid") {
      summary[i].error = summary[i].report["error"].get<std::string>();
      summary[i].report = nullptr;
    }
  }
  const auto rows = reports::summary_rows(summary);
  write_file_atomic((std::filesystem::path(out_dir) / "summary.csv").string(),
                    reports::summary_csv(rows));
  write_file_atomic((std::filesystem::path(out_dir) / "summary.jsonl").string(),
                    reports::summary_jsonl(rows));
  int invalid = 0;
  for (const auto& p : summary) invalid += p.report.is_null() ? 1 : 0;
  std::cout << fmt::format(
      "sweep: {} points ({} reused from an earlier run, {} invalid) -> {}/summary.csv\n",
      points.size(), reused, invalid, out_dir);
  return 0;
}

}  // namespace moesim::cli
