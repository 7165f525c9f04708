#pragma once
// Standalone SVG charts (no scripts, no external fonts or files): a line
// chart of y against x with one line per series, and a stacked bar chart of
// each point's step-time breakdown.

#include <string>
#include <vector>

namespace moesim::reports {

struct Series {
  std::string name;
  std::vector<double> x, y;
};
std::string line_chart_svg(const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::vector<Series>& series,
                           const std::vector<std::string>& x_tick_labels = {});

struct StackedBar {
  std::string label;
  std::vector<double> values;  // one per category
};
std::string stacked_bar_svg(const std::string& title, const std::string& y_label,
                            const std::vector<std::string>& categories,
                            const std::vector<StackedBar>& bars);

}  // namespace moesim::reports
