#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

#include "sim/core/rng.h"
#include "sim/engine/engine.h"

using moesim::Engine;
using moesim::EventHandler;
using moesim::EventId;
using moesim::SimTime;

namespace {

// Records (time, arg) of every event it receives.
struct Recorder final : EventHandler {
  explicit Recorder(Engine& e) : engine(e) {}
  void on_event(uint64_t arg) override { log.emplace_back(engine.now().ps(), arg); }
  Engine& engine;
  std::vector<std::pair<int64_t, uint64_t>> log;
};

SimTime ps(int64_t v) {
  return SimTime::from_ps(v);
}

}  // namespace

TEST_CASE("events fire in time order, ties in insertion order", "[engine]") {
  Engine engine;
  Recorder rec(engine);
  engine.schedule_at(ps(30), rec, 1);
  engine.schedule_at(ps(10), rec, 2);
  engine.schedule_at(ps(20), rec, 3);
  engine.schedule_at(ps(10), rec, 4);
  engine.schedule_at(ps(10), rec, 5);
  CHECK(engine.pending() == 5);
  CHECK(engine.run() == 5);
  using P = std::pair<int64_t, uint64_t>;
  CHECK(rec.log == std::vector<P>{{10, 2}, {10, 4}, {10, 5}, {20, 3}, {30, 1}});
  CHECK(engine.now().ps() == 30);
  CHECK(engine.pending() == 0);
}

TEST_CASE("events scheduled at the current time by a handler run after it, in order", "[engine]") {
  Engine engine;
  struct Chain final : EventHandler {
    Engine& e;
    std::vector<uint64_t> seen;
    explicit Chain(Engine& en) : e(en) {}
    void on_event(uint64_t arg) override {
      seen.push_back(arg);
      if (arg < 3) {
        e.schedule_after(SimTime::zero(), *this, arg * 10 + 1);
        e.schedule_after(SimTime::zero(), *this, arg * 10 + 2);
      }
    }
  } chain(engine);
  engine.schedule_at(ps(5), chain, 0);
  engine.schedule_at(ps(5), chain, 100);
  engine.run();
  CHECK(chain.seen == std::vector<uint64_t>{0, 100, 1, 2, 11, 12, 21, 22});
}

TEST_CASE("cancel removes an event; cancel twice and cancel after fire return false", "[engine]") {
  Engine engine;
  Recorder rec(engine);
  const EventId a = engine.schedule_at(ps(10), rec, 1);
  const EventId b = engine.schedule_at(ps(20), rec, 2);
  CHECK(engine.is_pending(a));
  CHECK(engine.cancel(a));
  CHECK_FALSE(engine.cancel(a));
  CHECK_FALSE(engine.is_pending(a));
  CHECK(engine.pending() == 1);
  engine.run();
  CHECK(rec.log.size() == 1);
  CHECK(rec.log[0].second == 2);
  CHECK_FALSE(engine.cancel(b));  // already fired
  CHECK_FALSE(engine.cancel(EventId()));
}

TEST_CASE("a stale id never cancels the event that reuses its slot", "[engine]") {
  Engine engine;
  Recorder rec(engine);
  const EventId a = engine.schedule_at(ps(10), rec, 1);
  engine.run();
  const EventId b = engine.schedule_at(ps(20), rec, 2);  // reuses a's slot
  CHECK_FALSE(engine.cancel(a));
  CHECK(engine.is_pending(b));
  engine.run();
  CHECK(rec.log.back().second == 2);
}

TEST_CASE("reschedule moves an event earlier or later", "[engine]") {
  Engine engine;
  Recorder rec(engine);
  EventId a = engine.schedule_at(ps(100), rec, 1);
  engine.schedule_at(ps(50), rec, 2);
  a = engine.reschedule(a, ps(10));
  REQUIRE(a.valid());
  EventId c = engine.schedule_at(ps(20), rec, 3);
  c = engine.reschedule(c, ps(70));
  engine.run();
  using P = std::pair<int64_t, uint64_t>;
  CHECK(rec.log == std::vector<P>{{10, 1}, {50, 2}, {70, 3}});
  CHECK_FALSE(engine.reschedule(a, ps(200)).valid());  // already fired
}

TEST_CASE("a handler may cancel and reschedule other events, including its own successor",
          "[engine]") {
  Engine engine;
  Recorder rec(engine);
  struct Canceller final : EventHandler {
    Engine& e;
    Recorder& rec;
    EventId victim, moved;
    Canceller(Engine& en, Recorder& r) : e(en), rec(r) {}
    void on_event(uint64_t) override {
      CHECK(e.cancel(victim));
      moved = e.reschedule(moved, e.now() + SimTime::from_ps(1));
      const EventId own = e.schedule_after(SimTime::from_ps(5), rec, 99);
      CHECK(e.cancel(own));  // the deferred successor itself
      e.schedule_after(SimTime::from_ps(7), rec, 77);
    }
  } c(engine, rec);
  engine.schedule_at(ps(10), c);
  c.victim = engine.schedule_at(ps(15), rec, 1);
  c.moved = engine.schedule_at(ps(40), rec, 2);
  engine.run();
  using P = std::pair<int64_t, uint64_t>;
  CHECK(rec.log == std::vector<P>{{11, 2}, {17, 77}});
  CHECK(engine.pending() == 0);
}

TEST_CASE("scheduling in the past is a logic error", "[engine]") {
  Engine engine;
  Recorder rec(engine);
  engine.schedule_at(ps(10), rec);
  engine.run();
  CHECK_THROWS_AS(engine.schedule_at(ps(5), rec), std::logic_error);
}

TEST_CASE("run_until stops at the limit and advances the clock", "[engine]") {
  Engine engine;
  Recorder rec(engine);
  engine.schedule_at(ps(10), rec, 1);
  engine.schedule_at(ps(30), rec, 2);
  CHECK(engine.run_until(ps(20)) == 1);
  CHECK(engine.now().ps() == 20);
  CHECK(engine.pending() == 1);
  CHECK(engine.run_until(ps(30)) == 1);  // inclusive limit
  CHECK(engine.now().ps() == 30);
}

TEST_CASE("stop() ends run() after the current event", "[engine]") {
  Engine engine;
  struct Stopper final : EventHandler {
    Engine& e;
    int fired = 0;
    explicit Stopper(Engine& en) : e(en) {}
    void on_event(uint64_t) override {
      if (++fired == 3) e.stop();
      e.schedule_after(SimTime::from_ps(1), *this);
    }
  } s(engine);
  engine.schedule_at(ps(0), s);
  CHECK(engine.run() == 3);
  CHECK(engine.pending() == 1);
}

namespace {

// A random workload mixing schedules, cancels and reschedules; returns the
// complete trace of fired events.
std::vector<std::pair<int64_t, uint64_t>> random_trace(uint64_t seed) {
  Engine engine;
  Recorder rec(engine);
  moesim::Rng rng(seed);
  std::vector<EventId> ids;
  for (uint64_t i = 0; i < 50'000; ++i) {
    // Coarse times force many ties, which the sequence number must break.
    ids.push_back(engine.schedule_at(ps(static_cast<int64_t>(rng.below(1000))), rec, i));
    if (rng.below(4) == 0) engine.cancel(ids[rng.below(ids.size())]);
    if (rng.below(4) == 0) {
      EventId& id = ids[rng.below(ids.size())];
      const EventId moved = engine.reschedule(id, ps(static_cast<int64_t>(rng.below(1000))));
      if (moved.valid()) id = moved;
    }
  }
  const size_t expected = engine.pending();
  engine.run();
  CHECK(rec.log.size() == expected);
  return rec.log;
}

}  // namespace

TEST_CASE("same seed gives an identical event trace; the trace is time-ordered",
          "[engine][determinism]") {
  const auto a = random_trace(11);
  const auto b = random_trace(11);
  CHECK(a == b);
  for (size_t i = 1; i < a.size(); ++i) REQUIRE(a[i - 1].first <= a[i].first);
  CHECK(random_trace(12) != a);
}

TEST_CASE("mass cancellation keeps the queue bounded and correct", "[engine]") {
  Engine engine;
  Recorder rec(engine);
  // Reschedule the same event 10^5 times: the lazily cancelled records must be
  // purged and exactly one firing must remain.
  EventId id = engine.schedule_at(ps(1'000'000), rec, 7);
  for (int i = 0; i < 100'000; ++i) id = engine.reschedule(id, ps(1'000'000 - i));
  CHECK(engine.pending() == 1);
  engine.run();
  REQUIRE(rec.log.size() == 1);
  CHECK(rec.log[0] == std::make_pair<int64_t, uint64_t>(1'000'000 - 99'999, 7));
}
