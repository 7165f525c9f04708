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
  // The integral of x mod w: the partial chunks at either end, whole chunks
  // (w^2 / 2 each) between, so a long prompt costs no loop.
  const int64_t end = first + count;
  const int64_t first_chunk = first / window_tokens, last_chunk = end / window_tokens;
  auto ramp = [](double from, double to) { return (to * to - from * from) / 2; };
  const double head = static_cast<double>(first % window_tokens);
  const double tail = static_cast<double>(end % window_tokens);
  if (first_chunk == last_chunk) return ramp(head, tail);
  return ramp(head, w) + static_cast<double>(last_chunk - first_chunk - 1) * w * w / 2 +
         ramp(0, tail);
}

int64_t ModelShape::windowed_cached_keys(int64_t position) const {
  return window_chunked ? position % window_tokens : std::min(position, window_tokens);
}

int64_t ModelShape::kv_blocks(int64_t from, int64_t to, int64_t block_tokens) const {
  const int64_t all = (to + block_tokens - 1) / block_tokens;
  if (!has_window()) return all;
  const int64_t start = window_chunked ? from / window_tokens * window_tokens
                                       : std::max<int64_t>(0, from - window_tokens + 1);
  return whole_blocks(all, all - std::min(all, start / block_tokens));
}

int64_t ModelShape::max_kv_blocks(int64_t to, int64_t step, int64_t block_tokens) const {
  const int64_t all = (to + block_tokens - 1) / block_tokens;
  if (!has_window()) return all;
  // A windowed layer holds the tokens from its window's start before the
  // first new one to the last: at most step + window - 1 of them (the
  // window's own tokens, or a chunk's), touching one block more than they fill.
  const int64_t reach = step + window_tokens - 1;
  return whole_blocks(all, std::min(all, (reach + block_tokens - 1) / block_tokens + 1));
}

double ModelShape::kv_cached_tokens(int64_t context) const {
  if (!has_window() || context <= 0) return static_cast<double>(std::max<int64_t>(context, 0));
  const int64_t kept = window_chunked ? context - (context - 1) / window_tokens * window_tokens
                                      : std::min(context, window_tokens);
  return (static_cast<double>(layers - windowed_layers) * static_cast<double>(context) +
          static_cast<double>(windowed_layers) * static_cast<double>(kept)) /
         layers;
}

int64_t ModelShape::whole_blocks(int64_t full_layer_blocks, int64_t windowed_layer_blocks) const {
  const int64_t total = static_cast<int64_t>(layers - windowed_layers) * full_layer_blocks +
                        windowed_layers * windowed_layer_blocks;
  return (total + layers - 1) / layers;
}

}  // namespace moesim::exec
