#pragma once
// Spreading a sweep's points or a search's simulations over processes: MPI
// ranks (Boost.MPI over Open MPI) when moesim is built with MPI and launched
// under mpirun; otherwise a single process. Item i belongs to rank i mod
// size; results are gathered on rank 0, which writes everything, so the
// output equals a single-process run.

#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "sim/core/error.h"
#include "sim/explore/processes.h"

namespace moesim::cli {

struct Distribution {
  int rank = 0;
  int size = 1;
  bool owns(size_t point) const { return static_cast<int>(point % size) == rank; }
};

// Initialises MPI on first use when launched by mpirun (OMPI_COMM_WORLD_SIZE
// or PMI_SIZE set) and built with MPI; otherwise {0, 1}.
Distribution process_distribution();

// Rank 0 receives every point's string (results[i] from the rank owning i);
// other ranks get an empty vector. `mine` holds this rank's results indexed
// by point (others empty).
std::vector<std::string> gather_to_root(const Distribution& d, std::vector<std::string> mine);

// The same ranks as the explore library takes them (sweeps and searches):
// rank, size, and gather_to_root as the gather.
explore::Processes explore_processes(const Distribution& d);

// Ends every process of the run with `exit_code` (MPI_Abort) after printing
// `message` on this one: a rank that stopped on an error while the others
// wait in gather_to_root would otherwise leave them waiting forever. A single
// process just exits.
[[noreturn]] void abort_processes(const std::string& message, int exit_code);

// Runs `work` (a command's share of a run over ranks) and returns its result.
// Over several ranks an exception ends every rank (abort_processes) with
// "moesim <command>: error: ... (rank R)", exit 2, for a user's error
// (moesim::Error), or "internal error", exit 1, for any other; one process
// lets it propagate to main, which reports it the same way.
template <typename Work>
auto run_on_ranks(const Distribution& d, std::string_view command, Work work) {
  if (d.size == 1) return work();
  try {
    return work();
  } catch (const Error& e) {
    abort_processes(fmt::format("moesim {}: error: {} (rank {})", command, e.what(), d.rank), 2);
  } catch (const std::exception& e) {
    abort_processes(
        fmt::format("moesim {}: internal error: {} (rank {})", command, e.what(), d.rank), 1);
  }
}

}  // namespace moesim::cli
