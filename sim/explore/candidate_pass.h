#pragma once
// What the training strategy search (search.h) and the serving layout search
// (search_inference.h) share: the divisors they enumerate over, and their two
// passes over the candidates: the rules and memory checked on every
// candidate, then (after an optional pruning of those that cannot win) a
// simulation of the ones that pass, each pass on `jobs`
// threads with its progress line, the simulations spread over processes
// (MPI ranks) where there are several. The survivors come back in
// enumeration order whatever the thread and process counts, so rankings are
// deterministic.

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/progress.h"
#include "sim/explore/processes.h"
#include "sim/scenario/run.h"

namespace moesim::explore {

// 1..n's divisors of n, ascending.
inline std::vector<int> divisors(int n) {
  std::vector<int> d;
  for (int i = 1; i <= n; ++i) {
    if (n % i == 0) d.push_back(i);
  }
  return d;
}

// Nothing to prune: every candidate that passed its check is simulated.
struct KeepAll {
  template <typename Candidate>
  void operator()(const std::vector<Candidate>&, std::vector<size_t>&,
                  std::map<std::string, int>&) const {}
};

// How a candidate's simulated outcome travels between processes: encode
// writes what simulate() set (OutcomeWriter), decode sets it again on rank 0.
template <typename Candidate>
struct OutcomeCodec {
  std::string (*encode)(const Candidate&);
  void (*decode)(const std::string&, Candidate&);
};

// check(candidate) -> scenario::ScenarioCheck, may fill the candidate (each
// candidate is touched by one thread); a failed check counts its reason_code
// in `rejected`. prune(candidates, passed, rejected) may then drop indices
// from `passed` (ascending), counting them in `rejected` under its own
// reasons. simulate(candidate) runs on each left: the k-th of them on
// process k mod processes.size, whose outcomes `codec` carries to rank 0.
// Every process checks every candidate (cheap, and the same everywhere, so
// all agree on what is left to simulate). Returns those left, moved out of
// `candidates`, in their order there; on ranks other than 0 only this
// rank's are simulated, and the caller shows nothing there.
template <typename Candidate, typename Check, typename Simulate, typename Prune = KeepAll>
std::vector<Candidate> check_then_simulate(std::vector<Candidate>& candidates, int jobs,
                                           const Processes& processes, const ProgressFn& checking,
                                           const ProgressFn& simulating,
                                           std::map<std::string, int>& rejected, Check check,
                                           Simulate simulate, OutcomeCodec<Candidate> codec,
                                           Prune prune = {}) {
  std::vector<size_t> valid;
  std::mutex mu;
  parallel_for_with_progress(candidates.size(), jobs, checking, [&](size_t i) {
    const scenario::ScenarioCheck result = check(candidates[i]);
    std::lock_guard<std::mutex> lock(mu);
    if (!result.valid) {
      ++rejected[result.reason_code];
      return;
    }
    valid.push_back(i);
  });
  std::sort(valid.begin(), valid.end());
  prune(candidates, valid, rejected);
  std::vector<size_t> mine;  // positions in `valid` this process simulates
  for (size_t k = 0; k < valid.size(); ++k) {
    if (processes.owns(k)) mine.push_back(k);
  }
  parallel_for_with_progress(mine.size(), jobs, simulating,
                             [&](size_t j) { simulate(candidates[valid[mine[j]]]); });
  if (processes.size > 1) {
    std::vector<std::string> outcomes(valid.size());
    for (size_t k : mine) outcomes[k] = codec.encode(candidates[valid[k]]);
    outcomes = processes.gather(std::move(outcomes));
    if (processes.rank == 0) {
      for (size_t k = 0; k < valid.size(); ++k) {
        if (!processes.owns(k)) codec.decode(outcomes[k], candidates[valid[k]]);
      }
    }
  }
  std::vector<Candidate> survivors;
  survivors.reserve(valid.size());
  for (size_t i : valid) survivors.push_back(std::move(candidates[i]));
  return survivors;
}

}  // namespace moesim::explore
