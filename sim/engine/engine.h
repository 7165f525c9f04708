#pragma once
// The discrete-event engine.
//
// Components implement EventHandler and schedule (handler, arg) pairs at
// simulated times. Events fire in (time, insertion sequence) order, so the same
// inputs always give the same event order. The engine knows nothing about what
// the events mean.
//
// Scheduling, cancelling and rescheduling are O(log n); cancellation is lazy:
// each pending event owns a slot that remembers the key of its queue record, so
// a record whose slot has moved on is skipped when it surfaces, and an EventId
// held after its event fired or was cancelled is simply stale (cancel() on it
// returns false). Limits: 2^26 events pending at once, 2^38 events scheduled
// over a run (std::length_error beyond). No allocation
// happens per event once the internal arrays have reached their high-water mark.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sim/core/time.h"
#include "sim/engine/event_queue.h"

namespace moesim {

class EventHandler {
 public:
  // Called when an event scheduled with this handler fires; engine.now() is the
  // event's time. The handler may schedule and cancel events freely.
  virtual void on_event(uint64_t arg) = 0;

 protected:
  ~EventHandler() = default;
};

// Identifies one scheduled event. Default-constructed ids refer to nothing.
class EventId {
 public:
  constexpr EventId() = default;
  constexpr bool valid() const { return key_ != 0; }
  friend constexpr bool operator==(EventId, EventId) = default;

 private:
  friend class Engine;
  constexpr explicit EventId(uint64_t key) : key_(key) {}
  uint64_t key_ = 0;  // the event's queue key: (sequence << kSlotBits) | slot
};

class Engine {
 public:
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  SimTime now() const { return now_; }

  // Schedules handler.on_event(arg) at `at`. REQUIRES: at >= now() (else throws
  // std::logic_error: scheduling into the past is a programming error).
  EventId schedule_at(SimTime at, EventHandler& handler, uint64_t arg = 0);
  EventId schedule_after(SimTime delay, EventHandler& handler, uint64_t arg = 0) {
    return schedule_at(now_ + delay, handler, arg);
  }

  // Cancels a pending event. Returns false if it already fired or was cancelled.
  bool cancel(EventId id);
  // Moves a pending event to a new time; it is ordered as if scheduled now
  // (new insertion sequence). Returns the new id, or an invalid id if `id` was
  // no longer pending (nothing is scheduled then).
  EventId reschedule(EventId id, SimTime at);
  bool is_pending(EventId id) const;

  // Runs events until none are left or stop() is called. Returns the number of
  // events executed by this call.
  uint64_t run();
  // Runs events with time <= limit; afterwards now() == limit if the queue
  // still holds later events.
  uint64_t run_until(SimTime limit);
  // Makes run()/run_until() return after the current event.
  void stop() { stop_requested_ = true; }

  // Events scheduled and not yet fired or cancelled.
  size_t pending() const { return live_; }
  uint64_t events_executed() const { return executed_; }

 private:
  static constexpr int kSlotBits = 26;
  static constexpr uint64_t kSlotMask = (uint64_t{1} << kSlotBits) - 1;
  static constexpr uint32_t kNoSlot = 0xFFFFFFFFu;

  struct Slot {
    EventHandler* handler;  // null while the slot is free
    uint64_t arg;
    uint64_t key;  // key of the pending record; 0 once fired or cancelled
  };

  static uint32_t slot_of(uint64_t key) { return static_cast<uint32_t>(key & kSlotMask); }
  uint32_t allocate_slot();
  void release_slot(uint32_t slot);
  bool is_live(const EventRecord& r) const { return slots_[slot_of(r.key)].key == r.key; }
  void purge_if_mostly_stale();
  uint64_t run_loop(SimTime limit);

  SimTime now_;
  uint64_t next_seq_ = 1;  // 0 is never used, so key 0 means "no event"
  uint64_t executed_ = 0;
  size_t live_ = 0;
  size_t stale_in_queue_ = 0;
  bool stop_requested_ = false;
  EventQueue queue_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;

  // While a handler runs, the first event it schedules is held here instead of
  // being pushed, so that the fired record can be replaced by it in one
  // sift-down (the common "each event schedules one successor" pattern).
  bool in_handler_ = false;
  bool have_deferred_ = false;
  EventRecord deferred_{};
};

}  // namespace moesim
