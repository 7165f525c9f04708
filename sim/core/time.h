#pragma once
// Simulated time.
//
// One unit everywhere: a signed 64-bit count of picoseconds. That spans about
// +-106 days, enough for many multi-second training steps, while a byte on a
// 400 GB/s link (2.5 ps) still has a non-zero duration. Doubles never cross the
// engine's API: durations are rounded to whole picoseconds once, where they are
// computed, and then only added as integers, so long runs do not drift.

#include <compare>
#include <cstdint>
#include <limits>

namespace moesim {

class SimTime {
 public:
  constexpr SimTime() = default;

  static constexpr SimTime from_ps(int64_t ps) { return SimTime(ps); }
  // The converters below round to the nearest picosecond and throw
  // moesim::Error if the value is not finite or does not fit in int64 ps.
  static SimTime from_ns(double ns);
  static SimTime from_us(double us);
  static SimTime from_ms(double ms);
  static SimTime from_seconds(double seconds);
  // Time to move `bytes` at `bytes_per_s`, rounded up to a whole picosecond so a
  // non-empty transfer never takes zero time. Throws on a non-positive rate or
  // on overflow. Exact integer arithmetic for integral rates.
  static SimTime transfer(uint64_t bytes, double bytes_per_s);

  static constexpr SimTime zero() { return SimTime(0); }
  static constexpr SimTime max() { return SimTime(std::numeric_limits<int64_t>::max()); }

  constexpr int64_t ps() const { return ps_; }
  constexpr double seconds() const { return static_cast<double>(ps_) * 1e-12; }
  constexpr double us() const { return static_cast<double>(ps_) * 1e-6; }

  // Checked arithmetic: overflow throws moesim::Error rather than wrapping.
  SimTime operator+(SimTime other) const {
    int64_t out;
    if (__builtin_add_overflow(ps_, other.ps_, &out)) throw_overflow('+', other);
    return SimTime(out);
  }
  SimTime operator-(SimTime other) const {
    int64_t out;
    if (__builtin_sub_overflow(ps_, other.ps_, &out)) throw_overflow('-', other);
    return SimTime(out);
  }
  SimTime& operator+=(SimTime other) { return *this = *this + other; }
  SimTime& operator-=(SimTime other) { return *this = *this - other; }

  friend constexpr auto operator<=>(SimTime, SimTime) = default;

 private:
  constexpr explicit SimTime(int64_t ps) : ps_(ps) {}
  [[noreturn]] void throw_overflow(char op, SimTime other) const;
  int64_t ps_ = 0;
};

constexpr SimTime max(SimTime a, SimTime b) {
  return a < b ? b : a;
}
constexpr SimTime min(SimTime a, SimTime b) {
  return a < b ? a : b;
}

}  // namespace moesim
