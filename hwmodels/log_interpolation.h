#pragma once
// Interpolation between measured points in log space: the one interpolator
// behind every calibration table (CalibratedCostModel's CPU grids,
// GpuCalibratedCostModel's published GPU curves).
//
// Kernel throughput grows roughly like a power of the problem size until it
// saturates, so it is a straight line in (log size, log throughput) between
// two measurements far more often than in linear coordinates; interpolating
// there also keeps every measured point exact and the result between its two
// neighbours.

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "sim/core/config.h"

namespace moesim::hw {

// A JSON array of strictly ascending positive numbers, returned as their
// natural logs. Errors name the element: "<path>[3]: values must be strictly
// ascending".
std::vector<double> log_axis_from_json(const Json& values, const std::string& path);

// Where log_x falls on an ascending log axis: the lower neighbour's index and
// the weight of the upper one (0 at a grid point). Clamped at both ends, so
// beyond the axis the end value is held.
// REQUIRES: `log_axis` is non-empty and strictly ascending.
struct LogBracket {
  size_t lower_index;
  double upper_weight;
};
LogBracket bracket_log(std::span<const double> log_axis, double log_x);

// y(x) measured at strictly ascending x > 0, with y > 0, interpolated linearly
// in (log x, log y): exact at each measured x, between the neighbours' values
// in between, held at the end values beyond the range.
class LogLogCurve {
 public:
  // REQUIRES: x and y non-empty, of equal size, positive; x strictly ascending.
  LogLogCurve(const std::vector<double>& x, const std::vector<double>& y);

  double at(double x) const;
  // True when min_x() <= x <= max_x(): the range measured, where at() is an
  // interpolation rather than a held end value.
  bool covers(double x) const;
  double min_x() const { return min_x_; }
  double max_x() const { return max_x_; }
  size_t size() const { return log_x_.size(); }

 private:
  std::vector<double> log_x_, log_y_;
  double min_x_ = 0, max_x_ = 0;
};

}  // namespace moesim::hw
