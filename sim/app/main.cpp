// moesim: command-line entry point. Dispatches to subcommands and turns user
// errors into one line on stderr and exit code 2.

#include <exception>
#include <iostream>
#include <span>

#include <fmt/format.h>

#include "sim/app/commands.h"

namespace {

using moesim::cli::Command;

constexpr Command kCommands[] = {
    {"run", "simulate a scenario (default: the embedded one) and write a JSON report",
     moesim::cli::run_main},
    {"collective", "simulate one collective (all-to-all, all-reduce, ...) on a cluster",
     moesim::cli::collective_main},
    {"presets", "list the GPU and cluster presets", moesim::cli::presets_main},
    {"models", "the MoE model catalog; `models show NAME`, `models import config.json`",
     moesim::cli::models_main},
    {"trace", "generate, inspect and import routing traces", moesim::cli::trace_main},
    {"calibrate", "time the reference MoE kernel and write compute-cost tables",
     moesim::cli::calibrate_main},
    {"validate", "compare predictions with measurements and published figures",
     moesim::cli::validate_main},
    {"sweep", "run a parameter sweep over scenario fields", moesim::cli::sweep_main},
    {"search", "search parallel strategies for a model on a cluster", moesim::cli::search_main},
    {"plot", "render sweep summaries as SVG charts", moesim::cli::plot_main},
    {"bench", "benchmarks printing JSON (see moesim bench --help)", moesim::cli::bench_main},
};

void print_help() {
  std::cout << "moesim " MOESIM_VERSION
               " - discrete-event simulator of Mixture-of-Experts systems\n\n"
               "usage: moesim <command> [options]     (moesim <command> --help for details)\n"
               "       moesim --help | --version\n\ncommands:\n";
  for (const Command& c : kCommands) std::cout << fmt::format("  {:<12}{}\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> all(argv + 1, argv + argc);
  if (all.empty() || all[0] == "--help" || all[0] == "-h" || all[0] == "help") {
    print_help();
    return 0;
  }
  if (all[0] == "--version") {
    std::cout << "moesim " MOESIM_VERSION "\n";
    return 0;
  }
  for (const Command& c : kCommands) {
    if (all[0] != c.name) continue;
    try {
      return c.main(std::vector<std::string>(all.begin() + 1, all.end()));
    } catch (const moesim::Error& e) {
      std::cerr << "moesim " << c.name << ": error: " << e.what() << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "moesim " << c.name << ": internal error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "moesim: unknown command '" << all[0] << "' (see moesim --help)\n";
  return 2;
}
