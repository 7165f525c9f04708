#include "sim/demo/mm1.h"

#include <fmt/format.h>

#include "sim/core/error.h"

namespace moesim {
namespace {

class MM1Model final : public EventHandler {
 public:
  MM1Model(Engine& engine, const MM1Config& c)
      : engine_(engine),
        config_(c),
        arrivals_(c.seed, /*stream=*/0),
        services_(c.seed, /*stream=*/1),
        waiting_since_ps_(1024) {}

  void start() { schedule_next_arrival(); }

  void on_event(uint64_t kind) override {
    account_area();
    if (kind == kArrival) {
      ++arrived_;
      push_waiting(engine_.now().ps());
      if (!busy_) start_service();
      if (arrived_ < config_.customers) schedule_next_arrival();
    } else {
      busy_time_ps_ += engine_.now().ps() - service_start_ps_;
      const int64_t arrived_at = pop_waiting();
      total_time_in_system_ps_ += static_cast<double>(engine_.now().ps() - arrived_at);
      ++served_;
      busy_ = false;
      if (queued_ > 0) start_service();
    }
  }

  MM1Result result() const {
    MM1Result r;
    r.customers_served = served_;
    r.events = engine_.events_executed();
    r.simulated_time_s = engine_.now().seconds();
    r.mean_time_in_system_s = served_ ? total_time_in_system_ps_ / served_ * 1e-12 : 0;
    const double t_ps = static_cast<double>(engine_.now().ps());
    r.mean_number_in_system = t_ps > 0 ? area_ / t_ps : 0;
    r.throughput_per_s = r.simulated_time_s > 0 ? served_ / r.simulated_time_s : 0;
    r.analytic_time_in_system_s = 1.0 / (config_.service_rate_per_s - config_.arrival_rate_per_s);
    r.utilization = t_ps > 0 ? static_cast<double>(busy_time_ps_) / t_ps : 0;
    return r;
  }

 private:
  static constexpr uint64_t kArrival = 0;
  static constexpr uint64_t kDeparture = 1;

  void schedule_next_arrival() {
    const double gap_ps = arrivals_.exponential(1e12 / config_.arrival_rate_per_s);
    engine_.schedule_after(SimTime::from_ps(static_cast<int64_t>(gap_ps + 0.5)), *this, kArrival);
  }

  void start_service() {
    busy_ = true;
    service_start_ps_ = engine_.now().ps();
    // The customer at the head stays in the ring until it departs.
    const double service_ps = services_.exponential(1e12 / config_.service_rate_per_s);
    engine_.schedule_after(SimTime::from_ps(static_cast<int64_t>(service_ps + 0.5)), *this,
                           kDeparture);
  }

  // Time-integral of the number in system, for L.
  void account_area() {
    const int64_t now = engine_.now().ps();
    area_ += static_cast<double>(queued_) * static_cast<double>(now - last_change_ps_);
    last_change_ps_ = now;
  }

  // A growable ring buffer of arrival times in FIFO order (no allocation per
  // customer once it has grown). queued_ counts customers in system.
  void push_waiting(int64_t t) {
    if (queued_ == waiting_since_ps_.size()) {
      std::vector<int64_t> bigger(waiting_since_ps_.size() * 2);
      for (size_t i = 0; i < queued_; ++i) {
        bigger[i] = waiting_since_ps_[(head_ + i) % waiting_since_ps_.size()];
      }
      waiting_since_ps_.swap(bigger);
      head_ = 0;
    }
    waiting_since_ps_[(head_ + queued_) % waiting_since_ps_.size()] = t;
    ++queued_;
  }
  int64_t pop_waiting() {
    const int64_t t = waiting_since_ps_[head_];
    head_ = (head_ + 1) % waiting_since_ps_.size();
    --queued_;
    return t;
  }

  Engine& engine_;
  MM1Config config_;
  Rng arrivals_;
  Rng services_;
  std::vector<int64_t> waiting_since_ps_;
  size_t head_ = 0;
  size_t queued_ = 0;  // customers in system (waiting + in service)
  uint64_t arrived_ = 0;
  uint64_t served_ = 0;
  bool busy_ = false;
  int64_t service_start_ps_ = 0;
  int64_t busy_time_ps_ = 0;
  int64_t last_change_ps_ = 0;
  double area_ = 0;
  double total_time_in_system_ps_ = 0;
};

}  // namespace

MM1Result simulate_mm1(const MM1Config& config) {
  if (!(config.arrival_rate_per_s > 0) ||
      !(config.service_rate_per_s > config.arrival_rate_per_s)) {
    throw Error(fmt::format(
        "mm1: need 0 < arrival_rate_per_s < service_rate_per_s for a stable queue, got {} and {}",
        config.arrival_rate_per_s, config.service_rate_per_s));
  }
  if (config.customers == 0) throw Error("mm1: customers must be positive");
  Engine engine;
  MM1Model model(engine, config);
  model.start();
  engine.run();
  return model.result();
}

}  // namespace moesim
