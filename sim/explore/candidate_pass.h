#pragma once
// What the training strategy search (search.h) and the serving layout search
// (search_inference.h) share: the divisors they enumerate over, and their two
// passes over the candidates: the rules and memory checked on every
// candidate, then (after an optional pruning of those that cannot win) a
// simulation of the ones that pass, each pass on `jobs`
// threads with its progress line. The survivors come back in enumeration
// order whatever the thread count, so rankings are deterministic.

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sim/core/progress.h"
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

// check(candidate) -> scenario::ScenarioCheck, may fill the candidate (each
// candidate is touched by one thread); a failed check counts its reason_code
// in `rejected`. prune(candidates, passed, rejected) may then drop indices
// from `passed` (ascending), counting them in `rejected` under its own
// reasons. simulate(candidate) runs on each left. Returns those, moved out of
// `candidates`, in their order there.
template <typename Candidate, typename Check, typename Simulate, typename Prune = KeepAll>
std::vector<Candidate> check_then_simulate(std::vector<Candidate>& candidates, int jobs,
                                           const ProgressFn& checking, const ProgressFn& simulating,
                                           std::map<std::string, int>& rejected, Check check,
                                           Simulate simulate, Prune prune = {}) {
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
  parallel_for_with_progress(valid.size(), jobs, simulating,
                             [&](size_t k) { simulate(candidates[valid[k]]); });
  std::vector<Candidate> survivors;
  survivors.reserve(valid.size());
  for (size_t i : valid) survivors.push_back(std::move(candidates[i]));
  return survivors;
}

}  // namespace moesim::explore
