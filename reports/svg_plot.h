#pragma once
// Standalone SVG charts (no scripts, no external fonts or files): a line
// chart of y against x with one line per series (y on a linear or log
// scale), and a stacked bar chart of each point's step-time breakdown.

#include <string>
#include <vector>

namespace moesim::reports {

struct Series {
  std::string name;
  std::vector<double> x, y;
};
// How y values map to height. kLog: decades from the power of ten at or
// below the smallest value to the one at or above the largest (ticks at 1, 2
// and 5 times each power over at most three decades, else at each power);
// REQUIRES every y > 0.
enum class AxisScale { kLinear, kLog };
std::string line_chart_svg(const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::vector<Series>& series,
                           const std::vector<std::string>& x_tick_labels = {},
                           AxisScale y_scale = AxisScale::kLinear);

struct StackedBar {
  std::string label;
  std::vector<double> values;  // one per category
};
std::string stacked_bar_svg(const std::string& title, const std::string& y_label,
                            const std::vector<std::string>& categories,
                            const std::vector<StackedBar>& bars);

}  // namespace moesim::reports
