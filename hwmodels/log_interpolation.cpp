#include "hwmodels/log_interpolation.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace moesim::hw {

std::vector<double> log_axis_from_json(const Json& values, const std::string& path) {
  if (!values.is_array() || values.empty()) throw_config_error(path, "expected a non-empty array");
  std::vector<double> out;
  for (size_t i = 0; i < values.size(); ++i) {
    const double x = expect_number(values[i], join_path(path, i), 1e-300, 1e300);
    if (!out.empty() && std::log(x) <= out.back()) {
      throw_config_error(join_path(path, i), "values must be strictly ascending");
    }
    out.push_back(std::log(x));
  }
  return out;
}

LogBracket bracket_log(std::span<const double> log_axis, double log_x) {
  if (log_axis.size() == 1 || log_x <= log_axis.front()) return {0, 0.0};
  if (log_x >= log_axis.back()) return {log_axis.size() - 1, 0.0};
  const size_t hi = std::upper_bound(log_axis.begin(), log_axis.end(), log_x) - log_axis.begin();
  const size_t lo = hi - 1;
  return {lo, (log_x - log_axis[lo]) / (log_axis[hi] - log_axis[lo])};
}

LogLogCurve::LogLogCurve(const std::vector<double>& x, const std::vector<double>& y) {
  assert(!x.empty() && x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    assert(x[i] > 0 && y[i] > 0 && (i == 0 || x[i] > x[i - 1]));
    log_x_.push_back(std::log(x[i]));
    log_y_.push_back(std::log(y[i]));
  }
  min_x_ = x.front();
  max_x_ = x.back();
}

double LogLogCurve::at(double x) const {
  const LogBracket b = bracket_log(log_x_, std::log(x));
  double log_y = log_y_[b.lower_index];
  if (b.upper_weight > 0) log_y += b.upper_weight * (log_y_[b.lower_index + 1] - log_y);
  return std::exp(log_y);
}

bool LogLogCurve::covers(double x) const {
  return x >= min_x_ && x <= max_x_;
}

}  // namespace moesim::hw
