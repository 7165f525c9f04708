#pragma once
// The pending-event set: a 4-ary min-heap of 16-byte records ordered by
// (time, insertion sequence).
//
// Why this shape: a record is two integers, so the four children of a node are
// exactly one 64-byte cache line (the array is cache-line aligned and offset so
// sibling groups never straddle lines), and a 4-ary heap is half as deep as a
// binary one. It beats std::priority_queue on the classic hold model at 10^3
// and 10^5 pending events (see `moesim bench engine`).
//
// Cancellation is lazy: the engine tells a live record from a cancelled one by
// comparing the record's key with the one its slot currently holds, so the
// queue itself never searches. No allocation happens per event once the
// buffer has grown to the high-water mark.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace moesim {

struct EventRecord {
  int64_t time_ps;
  // Insertion sequence in the high bits, event slot in the low bits. The
  // sequence is unique, so comparing the whole word orders ties by insertion,
  // and the word doubles as the event's identity (see Engine).
  uint64_t key;

  bool before(const EventRecord& o) const {
    return time_ps < o.time_ps || (time_ps == o.time_ps && key < o.key);
  }
};
static_assert(sizeof(EventRecord) == 16);

class EventQueue {
 public:
  // Below this many records the heap stays in L1/L2 and prefetching only costs.
  static constexpr size_t kCacheResident = 8192;

  EventQueue() = default;
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;
  ~EventQueue() { std::free(buffer_); }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  const EventRecord& top() const { return heap_[0]; }

  // The smallest record other than the top (the next top after a pop), or
  // null if there is none. Cheap: the root's children share one cache line.
  const EventRecord* second() const {
    if (size_ < 2) return nullptr;
    const size_t end = size_ < kArity + 1 ? size_ : kArity + 1;
    size_t best = 1;
    for (size_t c = 2; c < end; ++c) {
      if (heap_[c].before(heap_[best])) best = c;
    }
    return &heap_[best];
  }

  void push(const EventRecord& r) {
    if (size_ == capacity_) grow();
    sift_up(size_++, r);
  }

  void pop() {
    const EventRecord last = heap_[--size_];
    if (size_ > 0) sift_down(0, last);
  }

  // Removes the top and inserts r in one pass: the hold model's pop+push.
  // REQUIRES: !empty().
  void replace_top(const EventRecord& r) { sift_down(0, r); }

  // Drops every record for which dead(record) is true and restores the heap in
  // O(n). Used to purge cancelled records when they pile up.
  template <typename Pred>
  void remove_if(Pred dead) {
    size_t out = 0;
    for (size_t i = 0; i < size_; ++i) {
      if (!dead(heap_[i])) heap_[out++] = heap_[i];
    }
    size_ = out;
    if (out < 2) return;
    for (size_t i = (out - 2) / kArity + 1; i-- > 0;) sift_down(i, heap_[i]);
  }

 private:
  static constexpr size_t kArity = 4;
  // heap_ = buffer_ + 3: children 4i+1..4i+4 then sit at buffer offsets
  // 4(i+1)..4(i+1)+3, i.e. one aligned 64-byte line per sibling group.
  static constexpr size_t kPad = 3;

  void grow() {
    const size_t new_capacity = capacity_ ? capacity_ * 2 : 1024;
    const size_t bytes = (new_capacity + kPad + 1) * sizeof(EventRecord);
    auto* fresh = static_cast<EventRecord*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!fresh) throw std::bad_alloc();
    if (size_) std::memcpy(fresh + kPad, heap_, size_ * sizeof(EventRecord));
    std::free(buffer_);
    buffer_ = fresh;
    heap_ = fresh + kPad;
    capacity_ = new_capacity;
  }

  // Hole-based sifts: move the hole, write the record once at the end.
  void sift_up(size_t i, const EventRecord r) {
    while (i > 0) {
      const size_t parent = (i - 1) / kArity;
      if (!r.before(heap_[parent])) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = r;
  }

  void sift_down(size_t i, const EventRecord r) {
    const size_t n = size_;
    for (;;) {
      const size_t first = i * kArity + 1;
      if (first >= n) break;
      size_t best = first;
      // Fetch the grandchildren's lines while comparing the children: the
      // next level's load then overlaps this one instead of stalling on a
      // miss (large queues do not fit in cache).
      const size_t grandchild = first * kArity + 1;
      if (n > kCacheResident && grandchild < n) {
        for (size_t k = 0; k < kArity; ++k) {
          __builtin_prefetch(&heap_[grandchild + k * kArity]);
        }
      }
      if (first + kArity <= n) {
        // Full sibling group: a fixed-size scan the compiler unrolls.
        for (size_t c = first + 1; c < first + kArity; ++c) {
          if (heap_[c].before(heap_[best])) best = c;
        }
      } else {
        for (size_t c = first + 1; c < n; ++c) {
          if (heap_[c].before(heap_[best])) best = c;
        }
      }
      if (!heap_[best].before(r)) break;
      heap_[i] = heap_[best];
      i = best;
    }
    heap_[i] = r;
  }

  EventRecord* buffer_ = nullptr;
  EventRecord* heap_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace moesim
