#include <algorithm>

#include "sim/exec/step_inputs.h"

namespace moesim::exec {

double ModelShape::windowed_keys(int64_t first, int64_t count) const {
  const double a = static_cast<double>(first), b = static_cast<double>(first + count);
  const double w = static_cast<double>(window_tokens);
  if (!window_chunked) {
    // The integral of min(x, w) over [a, b).
    const double ramp_end = std::clamp(w, a, b);
    return (ramp_end * ramp_end - a * a) / 2 + w * (b - ramp_end);
  }
  // The integral of x mod w, one chunk segment at a time.
  double keys = 0;
  for (int64_t at = first; at < first + count;) {
    const int64_t chunk_end = (at / window_tokens + 1) * window_tokens;
    const int64_t end = std::min(first + count, chunk_end);
    const double from = static_cast<double>(at % window_tokens);
    const double to = from + static_cast<double>(end - at);
    keys += (to * to - from * from) / 2;
    at = end;
  }
  return keys;
}

int64_t ModelShape::windowed_cached_keys(int64_t position) const {
  return window_chunked ? position % window_tokens : std::min(position, window_tokens);
}

}  // namespace moesim::exec
