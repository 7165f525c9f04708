#include <limits>

#include <catch2/catch.hpp>

#include "sim/core/error.h"
#include "sim/core/time.h"

using moesim::Error;
using moesim::SimTime;

TEST_CASE("time converters round to the nearest picosecond", "[time]") {
  CHECK(SimTime::from_seconds(1.0).ps() == 1'000'000'000'000);
  CHECK(SimTime::from_ms(2.5).ps() == 2'500'000'000);
  CHECK(SimTime::from_us(0.001).ps() == 1000);
  CHECK(SimTime::from_ns(1.4e-3).ps() == 1);
  CHECK(SimTime::from_ns(1.6e-3).ps() == 2);
  CHECK(SimTime::from_seconds(-1e-12).ps() == -1);
  CHECK(SimTime::from_seconds(1.5).seconds() == 1.5);
}

TEST_CASE("transfer time is exact for integral rates and rounds up", "[time]") {
  // 1 byte at 400 GB/s = 2.5 ps -> 3 ps (never zero for a non-empty transfer).
  CHECK(SimTime::transfer(1, 400e9).ps() == 3);
  CHECK(SimTime::transfer(0, 400e9).ps() == 0);
  // 4 MiB at 50 GB/s: 4194304 / 5e10 s = 83886.08 ns -> 83886080 ps exactly.
  CHECK(SimTime::transfer(4194304, 50e9).ps() == 83'886'080);
  // Large: 1 TB at 1 B/s = 1e24 ps overflows int64.
  CHECK_THROWS_AS(SimTime::transfer(1'000'000'000'000ULL, 1.0), Error);
  // Non-integral rate path.
  CHECK(SimTime::transfer(3, 1.5e12).ps() == 2);
}

TEST_CASE("summing many rounded durations does not drift", "[time]") {
  // 10^6 transfers of 1 KB at 25 GB/s = 40960 ps each, exactly.
  SimTime t;
  for (int i = 0; i < 1'000'000; ++i) t += SimTime::transfer(1024, 25e9);
  CHECK(t.ps() == 40'960'000'000);
}

TEST_CASE("time overflow is reported, not wrapped", "[time]") {
  CHECK_THROWS_WITH(SimTime::from_seconds(1e8),
                    Catch::Contains("does not fit in the simulator's 64-bit picosecond clock"));
  CHECK_THROWS_AS(SimTime::from_seconds(std::numeric_limits<double>::infinity()), Error);
  CHECK_THROWS_AS(SimTime::from_seconds(std::numeric_limits<double>::quiet_NaN()), Error);
  CHECK_THROWS_AS(SimTime::max() + SimTime::from_ps(1), Error);
  CHECK_THROWS_AS(SimTime::from_ps(std::numeric_limits<int64_t>::min()) - SimTime::from_ps(1),
                  Error);
  CHECK_THROWS_AS(SimTime::transfer(10, 0.0), Error);
  CHECK_THROWS_AS(SimTime::transfer(10, -5.0), Error);
  // The largest representable time still converts.
  CHECK(SimTime::from_seconds(9.2e6).ps() == 9'200'000'000'000'000'000);
}
