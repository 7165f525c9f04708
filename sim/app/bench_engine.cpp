// `moesim bench engine`: the classic hold model (ns-3 utils/bench-scheduler.cc):
// keep P events pending; each fired event schedules one successor at
// now + Exp(mean 1 us). The same loop over a bare std::priority_queue of 24-byte
// records, with the same random draws, runs in the same process as the baseline.

#include <chrono>
#include <queue>

#include <fmt/format.h>

#include "reports/json_output.h"
#include "sim/app/bench.h"
#include "sim/core/rng.h"
#include "sim/engine/engine.h"

namespace moesim::cli {
namespace {

constexpr double kMeanDelayPs = 1e6;

class HoldModel final : public EventHandler {
 public:
  HoldModel(Engine& engine, uint64_t seed, uint64_t events)
      : engine_(engine), rng_(seed), remaining_(events) {}
  void on_event(uint64_t) override {
    if (--remaining_ == 0) engine_.stop();
    engine_.schedule_after(SimTime::from_ps(static_cast<int64_t>(rng_.exponential(kMeanDelayPs))),
                           *this);
  }
  Rng& rng() { return rng_; }

 private:
  Engine& engine_;
  Rng rng_;
  uint64_t remaining_;
};

struct BaselineRecord {
  int64_t time_ps;
  uint64_t seq;
  uint64_t payload;
  bool operator>(const BaselineRecord& o) const {
    return time_ps > o.time_ps || (time_ps == o.time_ps && seq > o.seq);
  }
};
static_assert(sizeof(BaselineRecord) == 24);

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Timing {
  double seconds;
  int64_t final_time_ps;
};

Timing time_engine(uint64_t events, uint64_t pending, uint64_t seed) {
  Engine engine;
  HoldModel model(engine, seed, events);
  for (uint64_t i = 0; i < pending; ++i) {
    engine.schedule_at(
        SimTime::from_ps(static_cast<int64_t>(model.rng().exponential(kMeanDelayPs))), model);
  }
  const auto t0 = std::chrono::steady_clock::now();
  engine.run();  // the model calls stop() after `events` events
  return {seconds_since(t0), engine.now().ps()};
}

Timing time_priority_queue(uint64_t events, uint64_t pending, uint64_t seed) {
  Rng rng(seed);
  std::priority_queue<BaselineRecord, std::vector<BaselineRecord>, std::greater<>> queue;
  uint64_t seq = 0;
  for (uint64_t i = 0; i < pending; ++i) {
    queue.push({static_cast<int64_t>(rng.exponential(kMeanDelayPs)), seq++, i});
  }
  const auto t0 = std::chrono::steady_clock::now();
  int64_t now = 0;
  for (uint64_t i = 0; i < events; ++i) {
    const BaselineRecord top = queue.top();
    queue.pop();
    now = top.time_ps;
    queue.push({now + static_cast<int64_t>(rng.exponential(kMeanDelayPs)), seq++, top.payload});
  }
  return {seconds_since(t0), now};
}

}  // namespace

int bench_engine_main(const Args& args) {
  po::options_description options("bench engine options");
  // Signed, so that "-5" is refused rather than wrapped to 2^64 - 5.
  int64_t events = 0, pending = 0;
  uint64_t seed = 0;
  options.add_options()("events", po::value(&events)->default_value(10'000'000),
                        "events to execute")("pending", po::value(&pending)->default_value(100'000),
                                             "events kept pending (P)")(
      "seed", po::value(&seed)->default_value(1), "random seed")(
      "json", "print JSON (the only output format; accepted for scripts)");
  po::variables_map vm;
  if (!parse(args, options, {}, vm, "moesim bench engine [--events N] [--pending P] --json")) {
    return 0;
  }
  // At 10-15 M events/s, 10^11 events is a few hours; 10^8 pending events
  // take a few GiB.
  constexpr int64_t kMaxEvents = 100'000'000'000, kMaxPending = 100'000'000;
  if (events < 1 || events > kMaxEvents) {
    throw Error(
        fmt::format("--events: expected an integer in [1, {}], got {}", kMaxEvents, events));
  }
  if (pending < 1 || pending > kMaxPending) {
    throw Error(
        fmt::format("--pending: expected an integer in [1, {}], got {}", kMaxPending, pending));
  }

  const Timing engine =
      time_engine(static_cast<uint64_t>(events), static_cast<uint64_t>(pending), seed);
  const Timing baseline =
      time_priority_queue(static_cast<uint64_t>(events), static_cast<uint64_t>(pending), seed);
  OrderedJson out;
  out["benchmark"] = "engine_hold_model";
  out["events"] = events;
  out["pending"] = pending;
  out["seconds"] = engine.seconds;
  out["events_per_second"] = static_cast<double>(events) / engine.seconds;
  out["baseline"] = "std::priority_queue<24-byte record>";
  out["baseline_seconds"] = baseline.seconds;
  out["baseline_events_per_second"] = static_cast<double>(events) / baseline.seconds;
  out["speedup_vs_baseline"] = baseline.seconds / engine.seconds;
  out["event_record_bytes"] = sizeof(EventRecord);
  emit(render_json(out), "");
  return 0;
}

}  // namespace moesim::cli
