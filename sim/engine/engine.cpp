#include "sim/engine/engine.h"

#include <stdexcept>
#include <string>

namespace moesim {

uint32_t Engine::allocate_slot() {
  if (!free_slots_.empty()) {
    const uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  if (slots_.size() > kSlotMask) throw std::length_error("more than 2^26 events pending");
  slots_.push_back(Slot{nullptr, 0, 0});
  return static_cast<uint32_t>(slots_.size() - 1);
}

void Engine::release_slot(uint32_t slot) {
  // Clearing the key invalidates the queue record and any EventId for it.
  slots_[slot].key = 0;
  slots_[slot].handler = nullptr;
  free_slots_.push_back(slot);
}

EventId Engine::schedule_at(SimTime at, EventHandler& handler, uint64_t arg) {
  if (at < now_) {
    throw std::logic_error("event scheduled in the past: " + std::to_string(at.ps()) +
                           " ps < now " + std::to_string(now_.ps()) + " ps");
  }
  if (next_seq_ >> (64 - kSlotBits)) throw std::length_error("more than 2^38 events scheduled");
  const uint32_t slot = allocate_slot();
  const uint64_t key = next_seq_++ << kSlotBits | slot;
  slots_[slot] = Slot{&handler, arg, key};
  const EventRecord r{at.ps(), key};
  if (in_handler_ && !have_deferred_) {
    deferred_ = r;
    have_deferred_ = true;
  } else {
    queue_.push(r);
  }
  ++live_;
  return EventId(key);
}

bool Engine::is_pending(EventId id) const {
  if (!id.valid()) return false;
  const uint32_t slot = slot_of(id.key_);
  return slot < slots_.size() && slots_[slot].key == id.key_;
}

bool Engine::cancel(EventId id) {
  if (!is_pending(id)) return false;
  if (have_deferred_ && deferred_.key == id.key_) {
    have_deferred_ = false;  // never reached the queue
  } else {
    ++stale_in_queue_;
  }
  release_slot(slot_of(id.key_));
  --live_;
  // Not while a handler runs: the fired record is still at the top of the
  // queue then, and a purge would drop it.
  if (!in_handler_) purge_if_mostly_stale();
  return true;
}

EventId Engine::reschedule(EventId id, SimTime at) {
  if (!is_pending(id)) return EventId();
  const Slot s = slots_[slot_of(id.key_)];
  cancel(id);
  return schedule_at(at, *s.handler, s.arg);
}

void Engine::purge_if_mostly_stale() {
  // Lazy cancellation leaves dead records behind; once they outnumber the live
  // ones, drop them all in one O(n) pass so memory and heap depth stay bounded.
  if (stale_in_queue_ > 1024 && stale_in_queue_ > queue_.size() / 2) {
    queue_.remove_if([this](const EventRecord& r) { return !is_live(r); });
    stale_in_queue_ = 0;
  }
}

uint64_t Engine::run() {
  return run_loop(SimTime::max());
}

uint64_t Engine::run_until(SimTime limit) {
  const uint64_t n = run_loop(limit);
  if (!stop_requested_ && now_ < limit && live_ > 0) now_ = limit;
  return n;
}

uint64_t Engine::run_loop(SimTime limit) {
  stop_requested_ = false;
  const uint64_t start = executed_;
  while (!queue_.empty() && !stop_requested_) {
    const EventRecord top = queue_.top();
    if (!is_live(top)) {
      queue_.pop();
      --stale_in_queue_;
      continue;
    }
    if (top.time_ps > limit.ps()) break;
    now_ = SimTime::from_ps(top.time_ps);
    const uint32_t slot = slot_of(top.key);
    EventHandler* handler = slots_[slot].handler;
    const uint64_t arg = slots_[slot].arg;
    release_slot(slot);
    --live_;
    ++executed_;

    in_handler_ = true;
    have_deferred_ = false;
    try {
      handler->on_event(arg);
    } catch (...) {
      in_handler_ = false;
      queue_.pop();
      if (have_deferred_) queue_.push(deferred_);
      have_deferred_ = false;
      throw;
    }
    in_handler_ = false;
    // The fired record is still at the top: its successor (if any) takes its
    // place in a single sift-down. Nothing the handler pushed can have moved
    // above it, since new events are at or after now with a larger sequence.
    // Start loading the next event's slot now so the miss overlaps the
    // sift-down below; at 10^5 pending events the slot array is out of cache.
    if (queue_.size() > EventQueue::kCacheResident) {
      const EventRecord* next = queue_.second();
      if (have_deferred_ && deferred_.before(*next)) next = &deferred_;
      __builtin_prefetch(&slots_[slot_of(next->key)]);
    }
    if (have_deferred_) {
      queue_.replace_top(deferred_);
      have_deferred_ = false;
    } else {
      queue_.pop();
    }
    purge_if_mostly_stale();
  }
  return executed_ - start;
}

}  // namespace moesim
