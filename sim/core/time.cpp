#include "sim/core/time.h"

#include <cmath>

#include <fmt/format.h>

#include "sim/core/error.h"

namespace moesim {
namespace {

SimTime from_scaled(double value, double ps_per_unit, const char* unit) {
  const double ps = std::round(value * ps_per_unit);
  // 2^63 is exactly representable; anything at or beyond it does not fit.
  if (!std::isfinite(ps) || ps >= 9.223372036854775808e18 || ps < -9.223372036854775808e18) {
    throw Error(fmt::format("time {} {} does not fit in the simulator's 64-bit picosecond clock",
                            value, unit));
  }
  return SimTime::from_ps(static_cast<int64_t>(ps));
}

}  // namespace

SimTime SimTime::from_ns(double ns) {
  return from_scaled(ns, 1e3, "ns");
}
SimTime SimTime::from_us(double us) {
  return from_scaled(us, 1e6, "us");
}
SimTime SimTime::from_ms(double ms) {
  return from_scaled(ms, 1e9, "ms");
}
SimTime SimTime::from_seconds(double s) {
  return from_scaled(s, 1e12, "s");
}

SimTime SimTime::transfer(uint64_t bytes, double bytes_per_s) {
  if (!(bytes_per_s > 0) || !std::isfinite(bytes_per_s)) {
    throw Error(
        fmt::format("bandwidth must be a positive finite number of bytes/s, got {}", bytes_per_s));
  }
  if (bytes == 0) return zero();
  // Integral rates (all presets) take the exact path: ceil(bytes * 1e12 / rate)
  // in 128-bit integers.
  if (bytes_per_s <= 1.8e19 && std::floor(bytes_per_s) == bytes_per_s) {
    const auto rate = static_cast<unsigned __int128>(bytes_per_s);
    const unsigned __int128 num = static_cast<unsigned __int128>(bytes) * 1000000000000ULL;
    const unsigned __int128 ps = (num + rate - 1) / rate;
    if (ps > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max())) {
      throw Error(fmt::format("transfer of {} bytes at {} bytes/s overflows the 64-bit clock",
                              bytes, bytes_per_s));
    }
    return from_ps(static_cast<int64_t>(ps));
  }
  const long double ps = std::ceil(static_cast<long double>(bytes) * 1e12L / bytes_per_s);
  if (ps >= 9.223372036854775807e18L) {
    throw Error(fmt::format("transfer of {} bytes at {} bytes/s overflows the 64-bit clock", bytes,
                            bytes_per_s));
  }
  return from_ps(static_cast<int64_t>(ps));
}

void SimTime::throw_overflow(char op, SimTime other) const {
  throw Error(fmt::format("simulated time overflow: {} ps {} {} ps", ps_, op, other.ps_));
}

}  // namespace moesim
