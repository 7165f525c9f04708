// `moesim plot summary.csv --x COL --y COL [--y COL ...] [--series COL] [--log-y]
// -o plot.svg`, and `moesim plot summary.csv --breakdown -o breakdown.svg`.

#include <iostream>
#include <map>

#include <fmt/format.h>

#include "reports/summary.h"
#include "reports/svg_plot.h"
#include "sim/app/commands.h"
#include "sim/core/file_io.h"

namespace moesim::cli {
namespace {

// A column by exact name, or by its last path component if that is unique
// ("capacity_factor" for "gating.capacity_factor").
size_t column(const reports::Table& t, const std::string& name, const char* option) {
  std::vector<size_t> hits;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (t.columns[i] == name) return i;
    const std::string& c = t.columns[i];
    if (c.size() > name.size() && c.ends_with(name) && c[c.size() - name.size() - 1] == '.') {
      hits.push_back(i);
    }
  }
  if (hits.size() == 1) return hits[0];
  std::string known;
  for (const auto& c : t.columns) {
    if (!known.empty()) known += ", ";
    known += c;
  }
  throw Error(fmt::format("{}: {} column '{}' (columns: {})", option,
                          hits.empty() ? "no" : "ambiguous", name, known));
}

bool number(const std::string& s, double& v) {
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return !s.empty() && end != s.c_str() && *end == '\0';
}

}  // namespace

int plot_main(const Args& args) {
  po::options_description options("plot options");
  std::string csv, x, series, out, title;
  std::vector<std::string> ys;
  options.add_options()("summary", po::value(&csv), "summary.csv of a sweep")("x", po::value(&x),
                                                                              "x column")(
      "y", po::value(&ys), "y column; repeat for several (one line each, named by the column)")(
      "series", po::value(&series), "one line per value of this column")(
      "log-y", "logarithmic y axis (values must be positive)")(
      "breakdown", "stacked bars of breakdown.* per point")(
      "title", po::value(&title), "chart title")("output,o", po::value(&out), "SVG file");
  po::positional_options_description positional;
  positional.add("summary", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim plot summary.csv --x COL --y COL [--y COL ...] [--series COL] [--log-y] "
             "-o plot.svg\n"
             "       moesim plot summary.csv --breakdown -o breakdown.svg")) {
    return 0;
  }
  if (csv.empty()) throw Error("plot: missing summary.csv");
  if (out.empty()) throw Error("--output: required (an .svg file)");
  const reports::Table t = reports::parse_csv(read_file(csv), csv);
  const size_t status = column(t, "status", "summary");
  std::string svg;
  if (vm.count("breakdown")) {
    std::vector<size_t> cols;
    std::vector<std::string> cats;
    for (size_t i = 0; i < t.columns.size(); ++i) {
      if (t.columns[i].starts_with("breakdown.")) {
        cols.push_back(i);
        cats.push_back(t.columns[i].substr(10));
      }
    }
    if (cols.empty()) throw Error(fmt::format("{}: no breakdown.* columns", csv));
    // Bars are labelled by the axis columns (those between hash and status).
    std::vector<reports::StackedBar> bars;
    for (const auto& row : t.rows) {
      if (row[status] != "ok") continue;
      reports::StackedBar b;
      for (size_t i = 2; i < status; ++i) {
        if (!b.label.empty()) b.label += ' ';
        b.label += t.columns[i].substr(t.columns[i].rfind('.') + 1);
        b.label += '=';
        b.label += row[i];
      }
      for (size_t c : cols) {
        double v = 0;
        number(row[c], v);
        b.values.push_back(v);
      }
      bars.push_back(b);
    }
    svg = reports::stacked_bar_svg(title.empty() ? "Step time breakdown" : title, "seconds", cats,
                                   bars);
  } else {
    if (x.empty() || ys.empty()) throw Error("plot: give --x and --y (or --breakdown)");
    const bool log_y = vm.count("log-y") > 0;
    const size_t xc = column(t, x, "--x");
    std::vector<size_t> ycs;
    for (const std::string& y : ys) ycs.push_back(column(t, y, "--y"));
    const size_t sc = series.empty() ? SIZE_MAX : column(t, series, "--series");
    // Numeric x when every value parses; otherwise categories in order of appearance.
    std::vector<std::string> cats;
    bool numeric = true;
    for (const auto& row : t.rows) {
      double v;
      if (!number(row[xc], v)) numeric = false;
      if (std::find(cats.begin(), cats.end(), row[xc]) == cats.end()) cats.push_back(row[xc]);
    }
    // One line per (y column, series value); a single y column keeps the
    // series' names as they were.
    std::map<std::string, reports::Series> by;
    std::vector<std::string> order;
    for (const size_t yc : ycs) {
      for (const auto& row : t.rows) {
        double yv;
        if (row[status] != "ok" || !number(row[yc], yv)) continue;
        if (log_y && !(yv > 0)) {
          throw Error(fmt::format("--log-y: {} is {} at point {}; a log axis needs positive values",
                                  t.columns[yc], row[yc], row[0]));
        }
        std::string key = ycs.size() > 1 ? t.columns[yc] : "";
        if (sc != SIZE_MAX) key += (key.empty() ? "" : " ") + t.columns[sc] + "=" + row[sc];
        if (!by.count(key)) order.push_back(key), by[key].name = key;
        double xv = 0;
        if (numeric) {
          number(row[xc], xv);
        } else {
          xv = static_cast<double>(std::find(cats.begin(), cats.end(), row[xc]) - cats.begin());
        }
        by[key].x.push_back(xv);
        by[key].y.push_back(yv);
      }
    }
    std::vector<reports::Series> lines;
    for (const auto& k : order) lines.push_back(by[k]);
    std::string y_label;
    for (const size_t yc : ycs) y_label += (y_label.empty() ? "" : ", ") + t.columns[yc];
    svg = reports::line_chart_svg(title.empty() ? y_label + " vs " + t.columns[xc] : title,
                                  t.columns[xc], y_label, lines,
                                  numeric ? std::vector<std::string>{} : cats,
                                  log_y ? reports::AxisScale::kLog : reports::AxisScale::kLinear);
  }
  write_file_atomic(out, svg);
  std::cout << "wrote " << out << "\n";
  return 0;
}

}  // namespace moesim::cli
