// goro internal: the address-keyed wait table behind Mutex, RWMutex, WaitGroup and Cond
// (Go's sema.go). A sync object is one word of state; the goroutines waiting on it sit in
// the bucket its address hashes to, so the object itself holds no lock and no queue.
//
// Invariants and lifetimes:
//  - A SemaWaiter lives on its parked goroutine's stack. It is in a bucket's queue iff
//    `enqueued`; only the holder of that bucket's lock changes either.
//  - A waker dequeues a waiter and grants it under the bucket lock, releases the lock,
//    then readies the goroutine. From the ready() on, the waiter record belongs to its
//    goroutine again (it may return and pop its stack frame).
//  - A sync object's state word may be freed by its owner the moment the operation that
//    releases it has been published (a WaitGroup's counter reaching zero, a Mutex's
//    unlock). Wakers therefore publish that state change while holding the bucket lock and
//    afterwards touch only the bucket and the dequeued waiters, never the object. The key
//    is an address used only for comparison, never dereferenced.
//  - A waiter is never woken for another object that later reuses its address: an object
//    cannot be freed while a goroutine is (legitimately) parked on it, and the zeroing of a
//    WaitGroup happens under the bucket lock, before any waiter could return.
//  - The table outlives every run; at the end of a run it is cleared (the abandoned
//    goroutines' waiter records go with their stacks), so a global object's next run
//    starts with no phantom waiters. A state word may still say "waiters present" then;
//    every slow path recomputes that flag from the table under the bucket lock.
//
// Lock order: a bucket lock is taken with no other goro lock held, except that ready()
// (run queues, sched_mu) may be called after it is released. Never two buckets at once.
#pragma once

#include <cassert>
#include <cstdint>

#include "goro/detail/lock.hpp"
#include "park.hpp"

namespace goro::detail {

// RWMutex keeps its readers and its writers in two queues of the same key.
enum class SemaKind : std::uint8_t { any, reader, writer };

struct SemaWaiter;

// The FIFO of one (key, kind) in a bucket. It lives in the record of the queue's first
// waiter and moves to the next waiter when that one leaves, so a bucket holds one small
// list of distinct keys and each object's waiters are found without walking others'.
struct SemaKeyQueue {
  const void* key = nullptr;
  SemaKind kind = SemaKind::any;
  SemaWaiter* head = nullptr;
  SemaWaiter* tail = nullptr;
  SemaKeyQueue* next = nullptr;  // the bucket's other queues
  SemaKeyQueue* prev = nullptr;
};

// A goroutine waiting in the table, on its stack. Fields by who guards them:
struct SemaWaiter {
  // Set by the goroutine before it enqueues the waiter, read-only while it is queued.
  G* g = nullptr;
  const void* key = nullptr;
  SemaKind kind = SemaKind::any;
  std::int64_t since_ns = 0;  // when it started waiting (Mutex starvation guard)
  // Links, under the bucket lock while queued; a waker that dequeued the waiter owns them
  // until ready() (a woken list reuses `next`).
  SemaWaiter* next = nullptr;
  SemaWaiter* prev = nullptr;
  SemaKeyQueue queue;  // used while this waiter heads its key's queue (bucket lock)

  // The grant, read by the goroutine once it runs again: the waker wrote it under the
  // bucket lock before ready(), and ready() -> resume orders that write before this read
  // (no lock held here, which the analysis cannot see).
  bool granted_after_wake() const noexcept GORO_NO_TSA { return granted_; }

 private:
  friend struct SemaBucket;
  // Guarded by the lock of the bucket of `key`. The analysis cannot tie a waiter to its
  // bucket, so only SemaBucket's members that require their own lock touch these (debug
  // builds check that the waiter hashes to that bucket).
  bool granted_ = false;   // the waker handed the resource over (or signalled, for Cond)
  bool parked_ = false;    // the goroutine committed to parking (Cond)
  bool enqueued_ = false;  // in its bucket
};

struct SemaBucket;
SemaBucket& sema_bucket(const void* key) noexcept;
// Whether key's waiters belong in b (always true for a bucket outside the table: tests).
bool sema_owns(const SemaBucket* b, const void* key) noexcept;

struct alignas(64) SemaBucket {
  Lock mu{LockRank::wait_table};
  SemaKeyQueue* keys GORO_GUARDED_BY(mu) = nullptr;

  // Enqueueing clears a waiter's grant: it waits for a new one.
  void push_back(SemaWaiter* w) GORO_REQUIRES(mu);
  void push_front(SemaWaiter* w) GORO_REQUIRES(mu);
  void remove(SemaWaiter* w) GORO_REQUIRES(mu);
  // The longest waiter on (key, kind), or nullptr; then the next one after `after`.
  SemaWaiter* first(const void* key, SemaKind kind = SemaKind::any) GORO_REQUIRES(mu);
  SemaWaiter* next_of(SemaWaiter* after, const void* /*key*/, SemaKind /*kind*/ = SemaKind::any)
      GORO_REQUIRES(mu) {
    return after->next;
  }
  bool empty() const GORO_REQUIRES(mu) { return keys == nullptr; }

  // A waiter's lock-guarded state (see SemaWaiter).
  void grant(SemaWaiter* w) GORO_REQUIRES(mu) { own(w)->granted_ = true; }
  bool granted(const SemaWaiter* w) const GORO_REQUIRES(mu) { return own(w)->granted_; }
  void mark_parked(SemaWaiter* w) GORO_REQUIRES(mu) { own(w)->parked_ = true; }
  bool parked(const SemaWaiter* w) const GORO_REQUIRES(mu) { return own(w)->parked_; }
  bool queued(const SemaWaiter* w) const GORO_REQUIRES(mu) { return own(w)->enqueued_; }

 private:
  template <class W>
  W* own(W* w) const noexcept {
    assert(sema_owns(this, w->key));
    return w;
  }
  SemaKeyQueue* find(const void* key, SemaKind kind) GORO_REQUIRES(mu);
  void start_queue(SemaWaiter* w) GORO_REQUIRES(mu);
  void move_queue(SemaKeyQueue* from, SemaWaiter* to) GORO_REQUIRES(mu);
};

// Parks the calling goroutine, releasing b.mu once it is off its stack.
void sema_park(WaitReason reason, SemaBucket& b) GORO_RELEASE(b.mu);

// End of a run: forget every waiter (their goroutines were abandoned with their stacks).
void sema_clear_all() noexcept;

}  // namespace goro::detail
