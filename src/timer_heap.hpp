// goro internal: a timer node and the binary heap of timers that a runtime owns (Go's
// per-P timer heap, one per runtime here). timer.cpp builds sleep, after, Timer, Ticker and
// the internal function timers on it; tests/test_internals.cpp checks it directly.
//
// Who guards what (the grouping of Go's sudog/timer comments):
//  - Set by the creator before the node is shared, read-only afterwards: kind, owned, g,
//    chan, fn (fn is also moved out by clear_timers, when no worker of the run is left).
//  - refs: atomic (see timer.hpp for who holds references).
//  - when, period, heap_index: guarded by the lock of the heap that holds the node. The
//    analysis cannot prove which heap that is, so they are private and reached only through
//    TimerHeap members that require that heap's lock (checked), each asserting in debug
//    builds that the node is the heap's own.
//  - home: the heap that holds the node, or nullptr. Written under that heap's lock (add,
//    remove, drain), read without a lock to find which lock to take; whoever takes it checks
//    again under the lock (a node moves from the pending heap into a run's heap at start).
//
// Heap invariants (under mu): a node is in the heap iff its home is this heap, iff
// heap_index >= 0, and then heap_[heap_index] is the node; a parent's when is <= its
// children's; next_when() mirrors the top's deadline (kNever when empty) and armed() the
// size, so workers read both without the lock. A closed heap (the end of its run) takes no
// node: add() refuses, and the caller arms the node into the process's pending heap.
// Lock rank: a run's heap is timer_heap (innermost); the pending heap is timer_pending,
// taken only before a run's heap (adopting at start of run), never inside it.
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "goro/chan.hpp"
#include "goro/detail/lock.hpp"

namespace goro::detail {

struct G;
class TimerHeap;

inline constexpr std::int64_t kNoTimer = INT64_MAX;  // next_when() of an empty heap

struct TimerNode {
  enum class Kind : std::uint8_t { sleep, chan, func };
  // Set before the node is shared.
  bool owned = true;  // heap-allocated and reference counted
  Kind kind = Kind::chan;
  G* g = nullptr;            // sleep
  ChanHandle chan;           // chan: Chan<Clock::time_point>, capacity 1
  std::function<void()> fn;  // func
  std::atomic<int> refs{1};
  // The heap holding the node (see the file comment).
  std::atomic<TimerHeap*> home{nullptr};

 private:
  friend class TimerHeap;
  // Guarded by home->mu (TimerHeap's accessors).
  std::int64_t when_ = 0;
  std::int64_t period_ = 0;  // > 0: a ticker
  std::int32_t heap_index_ = -1;
};

class TimerHeap {
 public:
  explicit TimerHeap(LockRank rank = LockRank::timer_heap) noexcept : mu(rank) {}
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;

  Lock mu;

  // Lock-free mirrors for the workers' scheduling loop.
  std::int64_t next_when() const noexcept { return next_when_.load(std::memory_order_seq_cst); }
  std::size_t armed() const noexcept { return armed_.load(std::memory_order_seq_cst); }

  // Adds t (in no heap) with its deadline and period. Returns false, doing nothing, on a
  // closed heap; otherwise sets *first to whether t became the earliest timer.
  bool add(TimerNode* t, std::int64_t when, std::int64_t period, bool* first) GORO_REQUIRES(mu) {
    assert(t->home.load(std::memory_order_relaxed) == nullptr && t->heap_index_ < 0);
    if (closed_) return false;
    t->when_ = when;
    t->period_ = period;
    t->home.store(this, std::memory_order_release);
    heap_.push_back(t);
    t->heap_index_ = static_cast<std::int32_t>(heap_.size() - 1);
    sift_up(heap_.size() - 1);
    publish();
    *first = t->heap_index_ == 0;
    return true;
  }

  // Removes t if this heap holds it; false if it does not.
  bool remove(TimerNode* t) GORO_REQUIRES(mu) {
    if (t->home.load(std::memory_order_relaxed) != this) return false;
    assert(t->heap_index_ >= 0 && heap_[static_cast<std::size_t>(t->heap_index_)] == t);
    const std::size_t i = static_cast<std::size_t>(t->heap_index_);
    const std::size_t last = heap_.size() - 1;
    if (i != last) {
      place(i, heap_[last]);
      heap_.pop_back();
      sift_down(i);
      sift_up(i);
    } else {
      heap_.pop_back();
    }
    unhome(t);
    publish();
    return true;
  }

  // Takes up to max timers due at `now`, earliest first, into out. A one-shot leaves the
  // heap and the heap's reference passes to the caller; a ticker stays, re-armed past now
  // (late ticks are skipped, as Go's are), and the caller gets a new reference to it (an
  // owned node) so that a concurrent stop and release cannot free it while it fires.
  std::size_t take_due(std::int64_t now, TimerNode** out, std::size_t max) GORO_REQUIRES(mu) {
    std::size_t n = 0;
    while (n < max && !heap_.empty() && heap_[0]->when_ <= now) {
      TimerNode* t = heap_[0];
      if (t->period_ > 0) {
        t->when_ += t->period_ * (1 + (now - t->when_) / t->period_);
        sift_down(0);
        if (t->owned) t->refs.fetch_add(1, std::memory_order_relaxed);
      } else {
        const std::size_t last = heap_.size() - 1;
        if (last != 0) place(0, heap_[last]);
        heap_.pop_back();
        if (!heap_.empty()) sift_down(0);
        unhome(t);
      }
      out[n++] = t;
    }
    if (n > 0) publish();
    return n;
  }

  // Removes every node, then calls each(t) for it (still under the lock).
  template <class F>
  void drain(F&& each) GORO_REQUIRES(mu) {
    std::vector<TimerNode*> nodes;
    nodes.swap(heap_);
    for (TimerNode* t : nodes) unhome(t);
    publish();
    for (TimerNode* t : nodes) each(t);
  }

  // Moves every node of `from` into this heap with its deadline and period (a run adopting
  // the timers armed while no run was active). Both locks held, `from`'s ranked first.
  // Returns whether the earliest deadline changed.
  bool adopt(TimerHeap& from) GORO_REQUIRES(mu, from.mu) {
    assert(!closed_);
    const std::int64_t before = next_when();
    for (TimerNode* t : from.heap_) {
      from.unhome(t);
      bool first;
      add(t, t->when_, t->period_, &first);
    }
    from.heap_.clear();
    from.publish();
    return next_when() < before;
  }

  // The end of the heap's run: from now on add() refuses.
  void close() GORO_REQUIRES(mu) { closed_ = true; }

  std::int64_t when_of(const TimerNode* t) const GORO_REQUIRES(mu) {
    assert(t->home.load(std::memory_order_relaxed) == this);
    return t->when_;
  }
  std::int64_t period_of(const TimerNode* t) const GORO_REQUIRES(mu) {
    assert(t->home.load(std::memory_order_relaxed) == this);
    return t->period_;
  }
  std::size_t size() const GORO_REQUIRES(mu) { return heap_.size(); }
  TimerNode* top() const GORO_REQUIRES(mu) { return heap_.empty() ? nullptr : heap_[0]; }

  // Every invariant of the file comment (tests, debug checks).
  bool check() const GORO_REQUIRES(mu) {
    for (std::size_t i = 0; i < heap_.size(); ++i) {
      const TimerNode* t = heap_[i];
      if (t->home.load(std::memory_order_relaxed) != this) return false;
      if (t->heap_index_ != static_cast<std::int32_t>(i)) return false;
      if (i > 0 && heap_[(i - 1) / 2]->when_ > t->when_) return false;
    }
    if (next_when() != (heap_.empty() ? kNoTimer : heap_[0]->when_)) return false;
    return armed() == heap_.size();
  }

 private:
  bool less(std::size_t a, std::size_t b) const GORO_REQUIRES(mu) {
    return heap_[a]->when_ < heap_[b]->when_;
  }
  void place(std::size_t i, TimerNode* t) GORO_REQUIRES(mu) {
    heap_[i] = t;
    t->heap_index_ = static_cast<std::int32_t>(i);
  }
  void unhome(TimerNode* t) GORO_REQUIRES(mu) {
    t->heap_index_ = -1;
    t->home.store(nullptr, std::memory_order_release);
  }
  void sift_up(std::size_t i) GORO_REQUIRES(mu) {
    TimerNode* t = heap_[i];
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!(t->when_ < heap_[parent]->when_)) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, t);
  }
  void sift_down(std::size_t i) GORO_REQUIRES(mu) {
    TimerNode* t = heap_[i];
    const std::size_t n = heap_.size();
    for (;;) {
      std::size_t m = 2 * i + 1;
      if (m >= n) break;
      if (m + 1 < n && less(m + 1, m)) ++m;
      if (!(heap_[m]->when_ < t->when_)) break;
      place(i, heap_[m]);
      i = m;
    }
    place(i, t);
  }
  void publish() GORO_REQUIRES(mu) {
    next_when_.store(heap_.empty() ? kNoTimer : heap_[0]->when_, std::memory_order_seq_cst);
    armed_.store(heap_.size(), std::memory_order_seq_cst);
  }

  std::vector<TimerNode*> heap_ GORO_GUARDED_BY(mu);
  bool closed_ GORO_GUARDED_BY(mu) = false;
  std::atomic<std::int64_t> next_when_{kNoTimer};
  std::atomic<std::size_t> armed_{0};
};

}  // namespace goro::detail
