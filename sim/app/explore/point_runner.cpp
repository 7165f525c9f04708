#include "sim/app/explore/point_runner.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

namespace moesim::cli {
namespace {

// A redraw per finished point would flood a terminal with writes when points
// take microseconds; ten a second reads as live.
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
// Plain lines: one per tenth of the work, or after this long without one.
constexpr auto kPlainLineInterval = std::chrono::seconds(10);

}  // namespace

ProgressDisplay::ProgressDisplay(std::string what, bool terminal, double quiet_s)
    : what_(std::move(what)),
      terminal_(terminal),
      quiet_s_(quiet_s),
      start_(Clock::now()),
      last_shown_(start_) {}

void ProgressDisplay::update(size_t finished, size_t count) {
  // One unit of work says nothing until it is done, when the output follows.
  if (what_.empty() || count <= 1) return;
  std::lock_guard<std::mutex> lock(mu_);
  // Updates race to the lock: one from an earlier point may arrive after the
  // last, which has already ended the display.
  if (shown_done_) return;
  const auto now = Clock::now();
  const bool done = finished >= count;
  const double elapsed_s = std::chrono::duration<double>(now - start_).count();
  if (elapsed_s < quiet_s_) return;
  const double eta_s = finished ? elapsed_s / finished * (count - std::min(finished, count)) : 0;
  if (terminal_) {
    if (!done && now - last_shown_ < kRedrawInterval) return;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * std::min(finished, count) / count);
    // \r returns to the line start; ESC[K clears what a longer earlier line left.
    std::fputs(fmt::format("\r{} [{}{}] {}/{}  {:.0f}s elapsed, ETA {:.0f}s\x1b[K{}", what_,
                           std::string(filled, '#'), std::string(kWidth - filled, ' '), finished,
                           count, elapsed_s, eta_s, done ? "\n" : "")
                   .c_str(),
               stderr);
  } else {
    const size_t tenth = 10 * std::min(finished, count) / count;
    if (tenth <= last_tenth_ && now - last_shown_ < kPlainLineInterval && !done) return;
    last_tenth_ = tenth;
    std::fputs(fmt::format("{}: {}/{} done, {:.1f}s elapsed, ETA {:.1f}s\n", what_, finished, count,
                           elapsed_s, eta_s)
                   .c_str(),
               stderr);
  }
  std::fflush(stderr);
  last_shown_ = now;
  shown_done_ = done;
}

ProgressFn progress_printer(const std::string& what, double quiet_s) {
  if (what.empty()) return {};
  auto display = std::make_shared<ProgressDisplay>(what, isatty(STDERR_FILENO) != 0, quiet_s);
  return [display](size_t done, size_t total) { display->update(done, total); };
}

}  // namespace moesim::cli
