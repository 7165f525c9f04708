// `moesim sweep sweep.json -o results/`: a base scenario plus axes, run point
// by point (sim/explore/sweep.h); resumable, threaded, and spread over MPI
// ranks when launched under mpirun.

#include <iostream>

#include <fmt/format.h>

#include "sim/app/commands.h"
#include "sim/app/explore/distributed.h"
#include "sim/app/explore/point_runner.h"
#include "sim/explore/sweep.h"

namespace moesim::cli {

int sweep_main(const Args& args) {
  po::options_description options("sweep options");
  std::string file, out_dir;
  int jobs = 2;
  double max_points = static_cast<double>(explore::kDefaultMaxSweepPoints);
  options.add_options()("sweep", po::value(&file), "sweep file")("output,o", po::value(&out_dir),
                                                                 "results directory")(
      "jobs,j", po::value(&jobs), "points simulated in parallel (default 2)")(
      "max-points", po::value(&max_points),
      "refuse sweeps of more points than this (default 10000, at most 1e7)");
  po::positional_options_description positional;
  positional.add("sweep", 1);
  po::variables_map vm;
  if (!parse(args, options, positional, vm,
             "moesim sweep sweep.json -o results/ [-j N] [--max-points N]")) {
    return 0;
  }
  if (file.empty()) throw Error("sweep: missing sweep file");
  if (out_dir.empty()) throw Error("--output: required (results directory)");
  check_jobs(jobs);
  if (!(max_points >= 1 && max_points <= 1e7)) {
    throw Error("--max-points: expected an integer in [1, 10000000]");
  }
  const std::vector<explore::SweepPoint> points =
      explore::load_sweep(file, static_cast<size_t>(max_points));
  const Distribution dist = process_distribution();
  const explore::Processes processes = explore_processes(dist);
  const std::string what = dist.size > 1 ? fmt::format("sweep rank {}", dist.rank) : "sweep";
  if (dist.rank == 0) std::cerr << fmt::format("sweep: {} points\n", points.size());
  const explore::SweepOutcome outcome = run_on_ranks(dist, "sweep", [&] {
    return explore::run_sweep(points, out_dir, jobs, processes, progress_printer(what));
  });
  if (dist.rank != 0) return 0;
  std::cout << fmt::format(
      "sweep: {} points ({} reused from an earlier run, {} invalid) -> {}/summary.csv\n",
      outcome.points, outcome.reused, outcome.invalid, out_dir);
  return 0;
}

}  // namespace moesim::cli
