#include "sim/app/explore/distributed.h"

#include <cstdlib>
#include <iostream>

#ifdef MOESIM_HAVE_MPI
#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#endif

namespace moesim::cli {

#ifdef MOESIM_HAVE_MPI
namespace {
bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr;
}
boost::mpi::environment& environment() {
  // Lives until exit; its destructor calls MPI_Finalize.
  static boost::mpi::environment env(boost::mpi::threading::funneled);
  return env;
}
}  // namespace
#endif

Distribution process_distribution() {
#ifdef MOESIM_HAVE_MPI
  if (launched_by_mpirun()) {
    environment();
    boost::mpi::communicator world;
    return {world.rank(), world.size()};
  }
#endif
  return {};
}

std::vector<std::string> gather_to_root(const Distribution& d, std::vector<std::string> mine) {
  if (d.size == 1) return mine;
#ifdef MOESIM_HAVE_MPI
  boost::mpi::communicator world;
  std::vector<std::vector<std::string>> all;
  boost::mpi::gather(world, mine, all, 0);
  if (d.rank != 0) return {};
  std::vector<std::string> out(mine.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = all[i % d.size][i];
  return out;
#else
  return mine;
#endif
}

explore::Processes explore_processes(const Distribution& d) {
  explore::Processes p;
  p.rank = d.rank;
  p.size = d.size;
  p.gather = [d](std::vector<std::string> mine) { return gather_to_root(d, std::move(mine)); };
  return p;
}

void abort_processes(const std::string& message, int exit_code) {
  std::cerr << message << std::endl;
#ifdef MOESIM_HAVE_MPI
  if (launched_by_mpirun()) environment().abort(exit_code);
#endif
  std::exit(exit_code);
}

}  // namespace moesim::cli
