#pragma once
// Progress of long commands (sweep, search) on stderr: a bar with ETA on a
// terminal, plain lines otherwise.

#include <string>

#include "sim/core/progress.h"

namespace moesim::cli {

// A ProgressFn printing "<what> ..." lines; empty `what` prints nothing.
ProgressFn progress_printer(const std::string& what);

}  // namespace moesim::cli
