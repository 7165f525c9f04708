// The searches' simulations spread over processes (sim/explore/processes.h,
// candidate_pass.h), played here by two ranks in one process: rank 1 runs
// first and its gather keeps what it sends; rank 0's gather hands that back,
// as Boost.MPI's gather would. cli.mpi_search runs the real thing.

#include "sim/explore/processes.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "sim/explore/candidate_pass.h"

namespace moesim::explore {
namespace {

TEST_CASE("An outcome crosses processes with every number's exact bits", "[explore]") {
  const double values[] = {0.1, -0.0, 1e-310, std::numeric_limits<double>::infinity(),
                           std::numeric_limits<double>::max()};
  OutcomeWriter out;
  for (double v : values) out.number(v);
  out.text(std::string("expert\0compute", 14)).number(std::nan(""));
  const std::string bytes = out.take();
  OutcomeReader in(bytes);
  for (double v : values) {
    const double got = in.number();
    CHECK(std::signbit(got) == std::signbit(v));
    CHECK(got == v);
  }
  CHECK(in.text() == std::string("expert\0compute", 14));
  CHECK(std::isnan(in.number()));
  CHECK(in.done());
  // Short bytes are a bug on the sending side, never read past.
  OutcomeReader truncated(std::string_view(bytes).substr(0, 5));
  CHECK_THROWS_AS(truncated.number(), std::logic_error);
  OutcomeWriter long_text;
  long_text.number(1e6);  // a string length with no string behind it
  const std::string claim = long_text.take();
  OutcomeReader liar(claim);
  CHECK_THROWS_AS(liar.text(), std::logic_error);
}

struct Toy {
  int id = 0;
  bool simulated = false;
  double score = 0;
  int simulated_by = -1;
};

std::string encode(const Toy& t) {
  return OutcomeWriter().number(t.score).take();
}
void decode(const std::string& bytes, Toy& t) {
  OutcomeReader in(bytes);
  t.score = in.number();
  t.simulated = true;
}

// Checks reject multiples of 3; simulation scores a candidate by its id.
std::vector<Toy> run_rank(const Processes& processes, std::map<std::string, int>& rejected) {
  std::vector<Toy> candidates(10);
  for (int i = 0; i < 10; ++i) candidates[i].id = i;
  return check_then_simulate(
      candidates, 2, processes, {}, {}, rejected,
      [](Toy& t) {
        scenario::ScenarioCheck c;
        c.valid = t.id % 3 != 0;
        if (!c.valid) c.reason_code = "multiple_of_three";
        return c;
      },
      [&](Toy& t) {
        t.simulated = true;
        t.score = 1.5 * t.id;
        t.simulated_by = processes.rank;
      },
      OutcomeCodec<Toy>{encode, decode});
}

TEST_CASE("Two ranks share the simulations and rank 0 holds every outcome", "[explore]") {
  std::vector<std::string> sent_by_rank1;
  Processes rank1{1, 2, [&](std::vector<std::string> mine) {
                    sent_by_rank1 = std::move(mine);
                    return std::vector<std::string>{};
                  }};
  Processes rank0{0, 2, [&](std::vector<std::string> mine) {
                    for (size_t k = 0; k < mine.size(); ++k) {
                      if (k % 2 == 1) mine[k] = sent_by_rank1[k];
                    }
                    return mine;
                  }};
  std::map<std::string, int> rejected1, rejected0, rejected_alone;
  const std::vector<Toy> on_rank1 = run_rank(rank1, rejected1);
  const std::vector<Toy> on_rank0 = run_rank(rank0, rejected0);
  const std::vector<Toy> alone = run_rank(Processes{}, rejected_alone);

  // Every process agrees on what passed: ids 1 2 4 5 7 8.
  REQUIRE(alone.size() == 6);
  CHECK(rejected_alone.at("multiple_of_three") == 4);
  CHECK(rejected0 == rejected_alone);
  CHECK(rejected1 == rejected_alone);
  // Rank 1 simulated every second survivor, rank 0 the others, and rank 0
  // ends with all six outcomes, equal to one process's.
  int by_rank1 = 0;
  for (size_t k = 0; k < on_rank1.size(); ++k) {
    CHECK(on_rank1[k].simulated == (k % 2 == 1));
    by_rank1 += on_rank1[k].simulated ? 1 : 0;
  }
  CHECK(by_rank1 == 3);
  REQUIRE(on_rank0.size() == alone.size());
  for (size_t k = 0; k < alone.size(); ++k) {
    CHECK(on_rank0[k].id == alone[k].id);
    CHECK(on_rank0[k].simulated);
    CHECK(on_rank0[k].score == alone[k].score);
    CHECK(on_rank0[k].simulated_by == (k % 2 == 0 ? 0 : -1));  // decoded, not re-run
  }
}

}  // namespace
}  // namespace moesim::explore
