#include "reports/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

namespace moesim::reports {
namespace {

constexpr double kW = 800, kH = 500, kLeft = 90, kRight = 200, kTop = 50, kBottom = 70;
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                    "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                    "#bcbd22", "#17becf", "#393b79", "#ad494a"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else if (c == '"')
      o += "&quot;";
    else
      o += c;
  }
  return o;
}

// "Nice" tick step covering [lo, hi] with about five ticks.
double tick_step(double lo, double hi) {
  const double span = std::max(hi - lo, 1e-300);
  const double raw = span / 5, mag = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (raw <= m * mag) return m * mag;
  }
  return 10 * mag;
}

std::string header(const std::string& title) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n<text x=\"{2}\" y=\"28\" font-size=\"16\" "
      "text-anchor=\"middle\">{3}</text>\n",
      kW, kH, (kLeft + kW - kRight) / 2, esc(title));
}

// A horizontal grid line at height y labelled `value`.
std::string y_tick(double y, double value) {
  return fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>\n",
                     kLeft, y, kW - kRight, y) +
         fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.4g}</text>\n", kLeft - 6,
                     y + 4, value);
}

// The axes' lines and the y label.
std::string axes_frame(const std::string& label) {
  std::string s;
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n", kLeft,
                   kTop, kH - kBottom);
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"black\"/>\n", kLeft,
                   kH - kBottom, kW - kRight);
  s += fmt::format(
      "<text x=\"20\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 20 {0:.1f})\">{1}"
      "</text>\n",
      kTop + (kH - kTop - kBottom) / 2, esc(label));
  return s;
}

std::string y_axis(double lo, double hi, const std::string& label) {
  std::string s;
  const double plot_h = kH - kTop - kBottom;
  const double step = tick_step(lo, hi);
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    s += y_tick(kTop + plot_h * (1 - (v - lo) / (hi - lo)), v);
  }
  return s + axes_frame(label);
}

// Log axis from 10^lo_decade to 10^hi_decade.
std::string y_axis_log(int lo_decade, int hi_decade, const std::string& label) {
  std::string s;
  const double plot_h = kH - kTop - kBottom;
  const int decades = hi_decade - lo_decade;
  const std::vector<double> mantissas =
      decades <= 3 ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
  for (int d = lo_decade; d <= hi_decade; ++d) {
    for (double m : mantissas) {
      const double position = (d - lo_decade + std::log10(m)) / decades;
      if (position > 1 + 1e-9) break;
      s += y_tick(kTop + plot_h * (1 - position), m * std::pow(10.0, d));
    }
  }
  return s + axes_frame(label);
}

std::string legend(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    const double y = kTop + 10 + 20 * i;
    s += fmt::format("<rect x=\"{}\" y=\"{:.1f}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n",
                     kW - kRight + 15, y - 10, kPalette[i % 12]);
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\">{}</text>\n", kW - kRight + 32, y, esc(names[i]));
  }
  return s;
}

}  // namespace

std::string line_chart_svg(const std::string& title, const std::string& x_label,
                           const std::string& y_label, const std::vector<Series>& series,
                           const std::vector<std::string>& x_ticks, AxisScale y_scale) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = 0, yhi = -INFINITY, ymin = INFINITY;
  for (const auto& s : series) {
    for (double x : s.x) xlo = std::min(xlo, x), xhi = std::max(xhi, x);
    for (double y : s.y) ylo = std::min(ylo, y), yhi = std::max(yhi, y), ymin = std::min(ymin, y);
  }
  if (!std::isfinite(xlo)) xlo = 0, xhi = 1;
  if (xhi <= xlo) xhi = xlo + 1;
  const double plot_w = kW - kLeft - kRight, plot_h = kH - kTop - kBottom;
  auto px = [&](double x) { return kLeft + plot_w * (x - xlo) / (xhi - xlo); };
  std::function<double(double)> py;
  std::string s = header(title);
  if (y_scale == AxisScale::kLog) {
    const int lo_decade = std::isfinite(ymin) ? static_cast<int>(std::floor(std::log10(ymin))) : 0;
    int hi_decade = std::isfinite(yhi) ? static_cast<int>(std::ceil(std::log10(yhi))) : 1;
    if (hi_decade <= lo_decade) hi_decade = lo_decade + 1;
    py = [=](double y) {
      return kTop + plot_h * (1 - (std::log10(y) - lo_decade) / (hi_decade - lo_decade));
    };
    s += y_axis_log(lo_decade, hi_decade, y_label);
  } else {
    if (!std::isfinite(yhi) || yhi <= ylo) yhi = ylo + 1;
    yhi *= 1.05;
    py = [=](double y) { return kTop + plot_h * (1 - (y - ylo) / (yhi - ylo)); };
    s += y_axis(ylo, yhi, y_label);
  }
  if (!x_ticks.empty()) {
    for (size_t i = 0; i < x_ticks.size(); ++i) {
      s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                       px(static_cast<double>(i)), kH - kBottom + 18, esc(x_ticks[i]));
    }
  } else {
    const double step = tick_step(xlo, xhi);
    for (double v = std::ceil(xlo / step) * step; v <= xhi + step * 1e-9; v += step) {
      s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.4g}</text>\n", px(v),
                       kH - kBottom + 18, v);
    }
  }
  s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                   kLeft + plot_w / 2, kH - 25, esc(x_label));
  std::vector<std::string> names;
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& se = series[i];
    std::string pts;
    for (size_t k = 0; k < se.x.size(); ++k)
      pts += fmt::format("{:.1f},{:.1f} ", px(se.x[k]), py(se.y[k]));
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n",
                     kPalette[i % 12], pts);
    for (size_t k = 0; k < se.x.size(); ++k) {
      s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"/>\n", px(se.x[k]),
                       py(se.y[k]), kPalette[i % 12]);
    }
    names.push_back(se.name);
  }
  if (series.size() > 1 || (!series.empty() && !series[0].name.empty())) s += legend(names);
  return s + "</svg>\n";
}

std::string stacked_bar_svg(const std::string& title, const std::string& y_label,
                            const std::vector<std::string>& categories,
                            const std::vector<StackedBar>& bars) {
  double yhi = 0;
  for (const auto& b : bars) {
    double sum = 0;
    for (double v : b.values) sum += std::max(0.0, v);
    yhi = std::max(yhi, sum);
  }
  if (yhi <= 0) yhi = 1;
  yhi *= 1.05;
  const double plot_w = kW - kLeft - kRight, plot_h = kH - kTop - kBottom;
  std::string s = header(title) + y_axis(0, yhi, y_label);
  const double slot = plot_w / std::max<size_t>(1, bars.size()), bw = slot * 0.7;
  for (size_t i = 0; i < bars.size(); ++i) {
    const double x = kLeft + slot * i + (slot - bw) / 2;
    double acc = 0;
    for (size_t c = 0; c < bars[i].values.size(); ++c) {
      const double v = std::max(0.0, bars[i].values[c]);
      if (v <= 0) continue;
      const double y0 = kTop + plot_h * (1 - acc / yhi), y1 = kTop + plot_h * (1 - (acc + v) / yhi);
      s += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
          "fill=\"{}\"><title>{}: {:.4g}</title></rect>\n",
          x, y1, bw, y0 - y1, kPalette[c % 12], esc(categories[c]), v);
      acc += v;
    }
    s += fmt::format(
        "<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"end\" transform=\"rotate(-35 "
        "{:.1f} {})\" font-size=\"10\">{}</text>\n",
        x + bw / 2, kH - kBottom + 14, x + bw / 2, kH - kBottom + 14, esc(bars[i].label));
  }
  return s + legend(categories) + "</svg>\n";
}

}  // namespace moesim::reports
